using EcsNet.Data;

namespace EcsNet.Labels.Cams;

/// <summary>CAM → pseudo-label map with a constant background score (docs/METHOD.md §2: PSA 0.2, IRN 0.15, SEAM 0.26).</summary>
public static class PseudoLabels
{
    public static LabelMask FromCams(CamMaps cams, double backgroundThreshold)
    {
        int n = cams.Height * cams.Width;
        var labels = new byte[n];
        for (int i = 0; i < n; i++)
        {
            float best = (float)backgroundThreshold;
            byte label = VocClasses.Background;
            for (int k = 0; k < cams.Classes.Count; k++)
            {
                float v = cams.Maps[k][i];
                if (v > best)
                {
                    best = v;
                    label = (byte)cams.Classes[k];
                }
            }
            labels[i] = label;
        }
        return new LabelMask(cams.Width, cams.Height, labels);
    }
}
