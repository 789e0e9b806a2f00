using System.Text;

namespace EcsNet.Core.Tests.Runtime;

/// <summary>Reads the version needs (.gnu.version_r) of an ELF64 little-endian file: name → vna_flags.</summary>
internal static class ElfVersionNeeds
{
    public static Dictionary<string, ushort> Read(string path)
    {
        var b = File.ReadAllBytes(path);
        var result = new Dictionary<string, ushort>();
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A), shnum = BitConverter.ToUInt16(b, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            int sh = (int)shoff + i * shentsize;
            if (BitConverter.ToUInt32(b, sh + 4) != 0x6ffffffe) continue;
            int need = (int)BitConverter.ToUInt64(b, sh + 0x18);
            int strSh = (int)shoff + (int)BitConverter.ToUInt32(b, sh + 0x28) * shentsize;
            int strOff = (int)BitConverter.ToUInt64(b, strSh + 0x18);
            for (int n = 0, count = (int)BitConverter.ToUInt32(b, sh + 0x2C); n < count; n++)
            {
                int aux = need + (int)BitConverter.ToUInt32(b, need + 8);
                for (int a = 0, cnt = BitConverter.ToUInt16(b, need + 2); a < cnt; a++)
                {
                    int nameOff = strOff + (int)BitConverter.ToUInt32(b, aux + 8);
                    var name = Encoding.ASCII.GetString(b, nameOff, Array.IndexOf(b, (byte)0, nameOff) - nameOff);
                    result[name] = BitConverter.ToUInt16(b, aux + 4);
                    aux += (int)BitConverter.ToUInt32(b, aux + 12);
                }
                need += (int)BitConverter.ToUInt32(b, need + 12);
            }
        }
        return result;
    }
}
