namespace NetStack.Dns;

/// <summary>
/// Resource record types the resolver reads and the lab's DNS service serves (RFC 1035 3.2.2, AAAA RFC 3596, SRV
/// RFC 2782, OPT RFC 6891); other type numbers pass through as their number. ANY (255) is a query type only.
/// </summary>
public enum DnsRecordType : ushort { A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28, SRV = 33, OPT = 41, ANY = 255 }

/// <summary>Where a record came in a response (RFC 1035 4.1): the answer, the authority or the additional section.</summary>
public enum DnsSection { Answer, Authority, Additional }
