namespace NetStack.Dns;

/// <summary>
/// Following CNAMEs in an answer (RFC 1034 3.6.2, 4.3.2 step 3a): from the name asked, each CNAME's target is looked up
/// again in the answer section until records of the type asked are found, or none and no further CNAME. A question for
/// CNAME or ANY takes the records at the name itself.
/// </summary>
internal static class DnsChain
{
    /// <param name="FinalName">The name at the end of the chain (the name asked when there is no CNAME).</param>
    /// <param name="Aliases">The CNAME records followed, in order.</param>
    /// <param name="Data">The records of the type asked at <paramref name="FinalName"/>.</param>
    /// <param name="Looped">The chain came back to a name already passed, or ran over <see cref="DnsConstants.MaxCnameChain"/> links.</param>
    public readonly record struct Result(string FinalName, List<DnsResourceRecord> Aliases, List<DnsResourceRecord> Data, bool Looped);

    public static Result Follow(IEnumerable<DnsResourceRecord> records, string name, DnsRecordType type)
    {
        var answers = records.Where(r => r.Section == DnsSection.Answer && r.Class == DnsConstants.ClassIn).ToList();
        var aliases = new List<DnsResourceRecord>();
        var seen = new HashSet<string> { name };
        var current = name;
        while (true)
        {
            var data = answers.Where(r => r.Name == current && (type == DnsRecordType.ANY || r.Type == type)).ToList();
            if (data.Count > 0 || type is DnsRecordType.CNAME or DnsRecordType.ANY) return new(current, aliases, data, false);
            var cname = answers.FirstOrDefault(r => r.Name == current && r.Type == DnsRecordType.CNAME);
            if (cname is null) return new(current, aliases, data, false);
            aliases.Add(cname);
            current = cname.Target!;
            if (!seen.Add(current) || aliases.Count > DnsConstants.MaxCnameChain) return new(current, aliases, new(), true);
        }
    }
}
