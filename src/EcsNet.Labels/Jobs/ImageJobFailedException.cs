namespace EcsNet.Labels.Jobs;

/// <summary>A job that failed for a reason other than bad input, or whose node was lost more often than allowed.</summary>
public sealed class ImageJobFailedException : Exception
{
    public ImageJobFailedException(string imageId, string node, string problem, Exception? inner = null)
        : base($"image {imageId} on {node}: {problem}", inner)
    {
        ImageId = imageId;
        Node = node;
    }

    public string ImageId { get; }

    /// <summary>The node the job last ran on (or was sent to).</summary>
    public string Node { get; }
}
