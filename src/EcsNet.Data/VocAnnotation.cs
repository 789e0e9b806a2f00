using System.Xml;
using System.Xml.Linq;

namespace EcsNet.Data;

/// <summary>Image-level labels from a VOC annotation XML (docs/METHOD.md §0): the classes named by its objects.</summary>
public static class VocAnnotation
{
    /// <summary>
    /// The foreground classes (1..20) named by the &lt;object&gt;&lt;name&gt; elements of the file. Objects marked
    /// difficult still count: the label says the class is in the picture. An unknown class name, an
    /// unreadable file or a file naming no object is a <see cref="BadInputException"/> naming the file.
    /// </summary>
    public static IReadOnlySet<int> ReadLabels(string xmlPath)
    {
        if (!File.Exists(xmlPath))
            throw new BadInputException(xmlPath, "annotation file not found");
        XDocument doc;
        try
        {
            doc = XDocument.Load(xmlPath);
        }
        catch (XmlException e)
        {
            throw new BadInputException(xmlPath, $"malformed XML ({e.Message})", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(xmlPath, $"cannot read file ({e.Message})", e);
        }
        var labels = new SortedSet<int>();
        foreach (var obj in doc.Descendants("object"))
        {
            var name = obj.Element("name")?.Value.Trim();
            if (string.IsNullOrEmpty(name))
                throw new BadInputException(xmlPath, "an <object> has no <name>");
            int index = VocClasses.IndexOf(name);
            if (index < 1)
                throw new BadInputException(xmlPath, $"unknown class name '{name}' (not one of the 20 VOC classes)");
            labels.Add(index);
        }
        if (labels.Count == 0)
            throw new BadInputException(xmlPath, "no <object> with a class name: empty label set");
        return labels;
    }
}
