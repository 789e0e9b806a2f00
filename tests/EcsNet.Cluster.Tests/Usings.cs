global using Xunit;
global using Xunit.Abstractions;

// Cluster tests start several nodes (and processes) whose failure detectors must not starve each other of CPU:
// one test class at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
