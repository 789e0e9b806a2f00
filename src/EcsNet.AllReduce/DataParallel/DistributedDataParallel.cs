using System.Diagnostics;
using EcsNet.AllReduce.Ring;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.AllReduce.DataParallel;

/// <summary>
/// Data-parallel training of one replica (docs/METHOD.md §7), like PyTorch DDP: every rank holds the same model,
/// computes the loss of its shard of the global batch, and the gradients are averaged by ring all-reduce
/// in buckets of about <see cref="DataParallelOptions.BucketBytes"/>, filled in reverse parameter order
/// (the order backward produces them). A bucket's all-reduce starts while backward is still running as
/// soon as every gradient in it is final (<see cref="GradientReady"/> marks modules whose backward is
/// done); whatever is left starts when backward returns.
/// The readiness probes are forward pre-hooks, and TorchSharp runs hooks only when a layer is invoked
/// through <c>call(x)</c> (as <c>Sequential</c> does); layers invoked with <c>forward(x)</c> directly are
/// still synchronised correctly, but only after backward returns (no overlap for their buckets). A layer
/// whose input needs no gradient (the first layer, or one on detached features) is probed through a leaf
/// alias of its input (<see cref="DataParallelOptions.ProbeInputsWithoutGradient"/>). Parameters of a
/// layer that runs forward but gets no gradient in a step keep their bucket (and every later one) waiting
/// until backward returns.
/// Limits: parameters must be float32; every rank must give every parameter a gradient each synchronised
/// step (a missing gradient counts as zeros and is not created); a parameter shared by two modules must
/// not be used outside its owner (its readiness is read from the owner only).
/// </summary>
public sealed class DistributedDataParallel : IGradientProbe, IDisposable
{
    private readonly nn.Module module;
    private readonly ICollective collective;
    private readonly DataParallelOptions options;
    private readonly Parameter[] parameters;
    private readonly Bucket[] buckets;
    private readonly int[] bucketOf;
    private readonly int[][] moduleParameters;
    private readonly int[] forwardsSeen;
    private readonly bool[] ready;
    private readonly int[] missing;
    private readonly List<Action> hooks = new();
    private int nextLaunch;
    private int launchedDuringBackward;
    private bool inBackward;
    private Task chain = Task.CompletedTask;
    private int noSync;

    public DistributedDataParallel(nn.Module module, ICollective collective, DataParallelOptions? options = null)
    {
        this.module = module;
        this.collective = collective;
        this.options = options ?? new DataParallelOptions();
        this.options.Validate();
        parameters = module.parameters().Where(p => p.requires_grad).ToArray();
        foreach (var p in parameters)
            if (p.dtype != ScalarType.Float32)
                throw new ArgumentException($"data-parallel sync supports float32 parameters only, found {p.dtype}", nameof(module));
        var index = parameters.Select((p, i) => (p.Handle, i)).ToDictionary(x => x.Handle, x => x.i);

        // buckets in reverse registration order: the last layers' gradients are ready first in backward
        var list = new List<Bucket>();
        var current = new List<int>();
        long bytes = 0;
        var bucketCap = this.options.CapFor(parameters.Sum(p => p.numel() * sizeof(float)));
        // the first layers' gradients are final only when backward returns: they get a small bucket of their own,
        // so that what is left to all-reduce after backward is short
        var tail = 0;
        for (long tailBytes = 0; tail < parameters.Length - 1 && this.options.LastBucketBytes > 0; tail++)
        {
            tailBytes += parameters[tail].numel() * sizeof(float);
            if (tailBytes > this.options.LastBucketBytes)
                break;
        }
        for (var i = parameters.Length - 1; i >= tail; i--)
        {
            var size = parameters[i].numel() * sizeof(float);
            var cap = list.Count == 0 ? Math.Min(this.options.FirstBucketBytes, bucketCap) : bucketCap;
            if (current.Count > 0 && bytes + size > cap)
            {
                list.Add(new Bucket(current.ToArray(), parameters));
                current.Clear();
                bytes = 0;
            }
            current.Add(i);
            bytes += size;
        }
        if (current.Count > 0)
            list.Add(new Bucket(current.ToArray(), parameters));
        if (tail > 0)
            list.Add(new Bucket(Enumerable.Range(0, tail).Reverse().ToArray(), parameters));
        buckets = list.ToArray();
        bucketOf = new int[parameters.Length];
        for (var b = 0; b < buckets.Length; b++)
            foreach (var p in buckets[b].Parameters)
                bucketOf[p] = b;
        ready = new bool[parameters.Length];
        missing = new int[buckets.Length];

        // a readiness probe in front of every module that owns parameters directly
        var owners = new List<int[]>();
        foreach (var (_, m) in module.named_modules().Prepend(("", module)).DistinctBy(x => x.Item2))
        {
            var own = m.named_parameters(recurse: false)
                .Select(x => index.TryGetValue(x.Item2.Handle, out var i) ? i : -1)
                .Where(i => i >= 0).ToArray();
            if (own.Length == 0 || m is not nn.Module<Tensor, Tensor> hookable)
                continue;
            var id = owners.Count;
            owners.Add(own);
            var remover = hookable.register_forward_pre_hook((_, input) => Probe(input, id));
            hooks.Add(remover.remove);
        }
        moduleParameters = owners.ToArray();
        forwardsSeen = new int[moduleParameters.Length];
    }

    public int Rank => collective.Rank;

    public int WorldSize => collective.WorldSize;

    /// <summary>Rank 0: the replica that writes checkpoints and logs (all replicas hold the same weights).</summary>
    public bool IsRoot => collective.Rank == 0;

    /// <summary>Bucket sizes in bytes, in launch order.</summary>
    public IReadOnlyList<long> BucketSizes => buckets.Select(b => (long)b.Flat.Length * sizeof(float)).ToArray();

    /// <summary>Timings of the last synchronised backward.</summary>
    public DataParallelStats? LastSync { get; private set; }

    /// <summary>True unless inside <see cref="NoSync"/>.</summary>
    public bool Synchronizing => noSync == 0;

    /// <summary>The contiguous slice [start, start+count) of a global batch that <paramref name="rank"/> takes.</summary>
    public static (int Start, int Count) Shard(int globalBatch, int rank, int world)
    {
        var baseCount = globalBatch / world;
        var extra = globalBatch % world;
        var start = rank * baseCount + Math.Min(rank, extra);
        return (start, baseCount + (rank < extra ? 1 : 0));
    }

    /// <summary>Copies rank <paramref name="root"/>'s parameters (and float buffers) to every rank, exactly.</summary>
    public async Task BroadcastParametersAsync(int root = 0, CancellationToken cancellationToken = default)
    {
        var tensors = module.parameters().Cast<Tensor>().ToList();
        if (options.BroadcastBuffers)
            tensors.AddRange(module.buffers().Where(b => b.dtype == ScalarType.Float32));
        var flat = new float[tensors.Sum(t => t.numel())];
        var offset = 0;
        foreach (var t in tensors)
        {
            TensorBytes.Read(t, flat.AsSpan(offset, (int)t.numel()));
            offset += (int)t.numel();
        }
        await collective.BroadcastAsync(flat, root, cancellationToken);
        offset = 0;
        using (no_grad())
            foreach (var t in tensors)
            {
                TensorBytes.Write(flat.AsSpan(offset, (int)t.numel()), t);
                offset += (int)t.numel();
            }
    }

    /// <summary>Forward and backward inside this scope only accumulate local gradients (gradient accumulation).</summary>
    public IDisposable NoSync()
    {
        noSync++;
        return new Scope(() => noSync--);
    }

    /// <summary>
    /// <c>loss.backward()</c>, then (unless in <see cref="NoSync"/>) the gradients of every rank averaged
    /// into each parameter's <c>.grad</c>. Throws <see cref="PeerFailedException"/> if a peer fails.
    /// </summary>
    public void Backward(Tensor loss)
    {
        var sync = Synchronizing;
        Array.Clear(ready);
        for (var b = 0; b < buckets.Length; b++)
            missing[b] = buckets[b].Parameters.Length;
        nextLaunch = 0;
        launchedDuringBackward = 0;
        chain = Task.CompletedTask;
        foreach (var bucket in buckets)
            bucket.Seconds = 0;

        var clock = Stopwatch.StartNew();
        inBackward = sync && options.OverlapWithBackward;
        try
        {
            loss.backward();
        }
        finally
        {
            inBackward = false;
            Array.Clear(forwardsSeen);
        }
        var backward = clock.Elapsed.TotalSeconds;
        if (!sync)
            return;

        while (nextLaunch < buckets.Length)
            Launch(buckets[nextLaunch++]);
        chain.GetAwaiter().GetResult();
        var wait = clock.Elapsed.TotalSeconds - backward;
        foreach (var bucket in buckets)
            bucket.WriteBack(parameters);
        LastSync = new DataParallelStats(backward, wait, buckets.Sum(b => b.Seconds), buckets.Length, launchedDuringBackward)
        {
            Bytes = buckets.Sum(b => (long)b.Flat.Length * sizeof(float)),
        };
    }

    /// <summary>One synchronised training step: zero grads, loss, <see cref="Backward"/>, optimizer step. Returns the loss.</summary>
    public float Step(Func<Tensor> computeLoss, optim.Optimizer optimizer)
    {
        optimizer.zero_grad();
        using var scope = NewDisposeScope();
        var loss = computeLoss();
        Backward(loss);
        optimizer.step();
        return loss.item<float>();
    }

    /// <summary>
    /// One step over <paramref name="microBatches"/> micro-batches of this rank's shard (gradient accumulation):
    /// all but the last backward without sync, each loss divided by the count so the gradient is their mean;
    /// the last backward synchronises the accumulated gradients. Returns the mean loss.
    /// </summary>
    public float AccumulateStep(Func<int, Tensor> microBatchLoss, int microBatches, optim.Optimizer optimizer)
    {
        if (microBatches < 1)
            throw new ArgumentOutOfRangeException(nameof(microBatches), microBatches, "at least one micro-batch");
        optimizer.zero_grad();
        var total = 0f;
        for (var k = 0; k < microBatches; k++)
        {
            using var scope = NewDisposeScope();
            using var quiet = k < microBatches - 1 ? NoSync() : null;
            var loss = microBatchLoss(k) / microBatches;
            Backward(loss);
            total += loss.item<float>();
        }
        optimizer.step();
        return total;
    }

    private Tensor Probe(Tensor input, int owner)
    {
        if (!Synchronizing || !options.OverlapWithBackward || !is_grad_enabled())
            return input;
        if (!input.requires_grad)
        {
            // The first layer, or a layer on detached features: no gradient would ever reach a probe on this
            // input, so the layer reads a leaf alias that asks for one (its input gradient is computed and
            // dropped) and its parameters' readiness becomes visible.
            if (!options.ProbeInputsWithoutGradient || !input.is_floating_point())
                return input;
            input = input.detach().requires_grad_(true);
        }
        forwardsSeen[owner]++;
        return GradientReady.apply(input, this, owner);
    }

    void IGradientProbe.BackwardReached(int owner)
    {
        // counted down even outside our Backward (another wrapper's), so the counts stay balanced
        forwardsSeen[owner] = Math.Max(0, forwardsSeen[owner] - 1);
        if (!inBackward || forwardsSeen[owner] > 0)
            return;
        foreach (var p in moduleParameters[owner])
        {
            if (ready[p])
                continue;
            ready[p] = true;
            missing[bucketOf[p]]--;
        }
        while (nextLaunch < buckets.Length && missing[nextLaunch] == 0)
        {
            launchedDuringBackward++;
            Launch(buckets[nextLaunch++]);
        }
    }

    /// <summary>Flattens the bucket's gradients now and queues its all-reduce after the previous bucket's.</summary>
    private void Launch(Bucket bucket)
    {
        bucket.Gather(parameters);
        var previous = chain;
        chain = Task.Run(async () =>
        {
            await previous;
            var start = Stopwatch.GetTimestamp();
            await collective.AllReduceAsync(bucket.Flat, options.Reduce, options.Compression);
            bucket.Seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        });
    }

    public void Dispose()
    {
        foreach (var remove in hooks)
            remove();
        hooks.Clear();
    }

    /// <summary>A run of parameters whose gradients travel in one all-reduce, and their flat buffer.</summary>
    private sealed class Bucket
    {
        public Bucket(int[] parameterIndices, Parameter[] all)
        {
            Parameters = parameterIndices;
            Offsets = new int[parameterIndices.Length];
            var offset = 0;
            for (var k = 0; k < parameterIndices.Length; k++)
            {
                Offsets[k] = offset;
                offset += checked((int)all[parameterIndices[k]].numel());
            }
            Flat = new float[offset];
        }

        public int[] Parameters { get; }

        public int[] Offsets { get; }

        public float[] Flat { get; }

        public double Seconds { get; set; }

        public void Gather(Parameter[] all)
        {
            for (var k = 0; k < Parameters.Length; k++)
            {
                var p = all[Parameters[k]];
                var slice = Flat.AsSpan(Offsets[k], (int)p.numel());
                var grad = p.grad;
                if (grad is null)
                    slice.Clear();
                else
                    TensorBytes.Read(grad, slice);
            }
        }

        public void WriteBack(Parameter[] all)
        {
            for (var k = 0; k < Parameters.Length; k++)
            {
                var p = all[Parameters[k]];
                if (p.grad is { } grad)
                    TensorBytes.Write(Flat.AsSpan(Offsets[k], (int)p.numel()), grad);
            }
        }
    }

    private sealed class Scope(Action onDispose) : IDisposable
    {
        private Action? action = onDispose;

        public void Dispose()
        {
            action?.Invoke();
            action = null;
        }
    }
}
