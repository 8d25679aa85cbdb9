namespace NetStack.Dns;

/// <summary>
/// Search domains (RFC 1123 6.1.4.3, as resolv.conf(5) applies them with ndots:1): a name ending in a dot is absolute
/// and asked as it is; a name without a dot is tried with each search domain appended, then as it is; a dotted name
/// is tried as it is first, then with each domain it does not already end in. The next candidate is asked only when the last one does not exist
/// (NXDOMAIN, or no record of the type).
/// </summary>
public static class DnsSearchList
{
    /// <summary>The names to ask for <paramref name="name"/> as the user gave it, in order (normalized; over-long ones left out).</summary>
    public static IReadOnlyList<string> Candidates(string name, IReadOnlyList<string> search)
    {
        var normalized = DnsName.Normalize(name);
        if (name.TrimEnd().EndsWith('.') || search.Count == 0) return new[] { normalized };
        var withSuffix = search
            .Where(s => !normalized.EndsWith("." + s, StringComparison.Ordinal)) // no www.lab.test.lab.test
            .Select(s => normalized + "." + s)
            .Where(n => n.Length + 2 <= DnsName.MaxWireLength);
        var list = normalized.Contains('.') ? withSuffix.Prepend(normalized) : withSuffix.Append(normalized);
        return list.Distinct().ToArray();
    }

    /// <summary>Each search domain normalized; throws StackConfigurationException naming the one that cannot be a domain name.</summary>
    public static IReadOnlyList<string> Validate(IReadOnlyList<string> search)
    {
        var list = new List<string>();
        foreach (var s in search)
        {
            try { list.Add(DnsName.Normalize(s)); }
            catch (ArgumentException e)
            {
                throw new StackConfigurationException(nameof(StackConfig.DnsSearch), $"Search domain '{s}' is not a domain name: {e.Message.Replace($" (Parameter '{e.ParamName}')", "")}");
            }
        }
        return list;
    }
}
