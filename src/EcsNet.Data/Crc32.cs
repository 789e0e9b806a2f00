namespace EcsNet.Data;

/// <summary>CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320) as PNG chunks require.</summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable(0xEDB88320u);

    /// <summary>The byte-at-a-time table of a reflected CRC-32 polynomial.</summary>
    internal static uint[] BuildTable(uint polynomial)
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? polynomial ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>Runs the register of <paramref name="table"/>'s polynomial over <paramref name="data"/>.</summary>
    internal static uint Update(uint[] table, uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>Runs the register over <paramref name="data"/>; start with 0xFFFFFFFF and xor the result with it.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data) => Update(Table, crc, data);

    /// <summary>The finished CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;
}

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 3720 §B.4), the checksum of TensorFlow's record files
/// that TensorBoard reads, with the masking those files apply (TensorFlow, core/lib/hash/crc32c.h).
/// </summary>
public static class Crc32C
{
    private static readonly uint[] Table = Crc32.BuildTable(0x82F63B78u);

    /// <summary>The finished CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.Update(Table, 0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;

    /// <summary>The CRC-32C of <paramref name="data"/> rotated right by 15 bits plus 0xA282EAD8, as a record file stores it.</summary>
    public static uint Masked(ReadOnlySpan<byte> data)
    {
        uint crc = Compute(data);
        return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
    }
}
