namespace EcsNet.Data;

/// <summary>
/// Bad input that a user can fix: names the file (or step/node) and the problem. Hosts print
/// <see cref="Exception.Message"/> without a stack trace and exit non-zero.
/// </summary>
public class BadInputException : Exception
{
    public BadInputException(string subject, string problem, Exception? inner = null)
        : base($"{subject}: {problem}", inner)
    {
        Subject = subject;
        Problem = problem;
    }

    /// <summary>The file, stage or node at fault.</summary>
    public string Subject { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}
