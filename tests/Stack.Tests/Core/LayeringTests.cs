using System.Reflection;
using NetStack;

namespace Stack.Tests.Core;

/// <summary>
/// The wiring rule of docs/architecture.md, checked: no protocol layer holds or is handed the whole stack. A layer
/// that could reach NetworkStack could reach every sibling through it (IPv4 calling ARP calling IPv4...), and then
/// nothing could be tested or replaced alone; each one is given the narrow interfaces of its neighbours and a
/// LayerContext instead. Only the composition root (NetworkStack) and the socket API (Sockets/) may know the stack.
/// Reflection sees what the compiler sees: fields (also those of lambda closures and state machines, which are
/// nested types), properties, events, constructor and method parameters and return types, base types and
/// interfaces, looking inside generic arguments and arrays.
/// </summary>
public class LayeringTests
{
    private static readonly string[] ProtocolNamespaces =
        ["NetStack.Arp", "NetStack.IPv4", "NetStack.Icmp", "NetStack.Udp", "NetStack.Tcp", "NetStack.Dns", "NetStack.Dhcp"];

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static bool InProtocolNamespace(Type t) =>
        t.Namespace is { } ns && ProtocolNamespaces.Any(p => ns == p || ns.StartsWith(p + ".", StringComparison.Ordinal));

    private static bool Names(Type t, Type target)
    {
        if (t == target) return true;
        if (t.HasElementType) return Names(t.GetElementType()!, target); // arrays, by-ref parameters, pointers
        return t.IsGenericType && t.GetGenericArguments().Any(a => Names(a, target));
    }

    /// <summary>Every place <paramref name="type"/> mentions another type, described for the failure message.</summary>
    private static IEnumerable<(string Where, Type Type)> Mentions(Type type)
    {
        if (type.BaseType is { } b) yield return ("base type", b);
        foreach (var i in type.GetInterfaces()) yield return ("interface", i);
        foreach (var f in type.GetFields(All)) yield return ($"field {f.Name}", f.FieldType);
        foreach (var p in type.GetProperties(All)) yield return ($"property {p.Name}", p.PropertyType);
        foreach (var e in type.GetEvents(All)) yield return ($"event {e.Name}", e.EventHandlerType!);
        foreach (var c in type.GetConstructors(All))
            foreach (var p in c.GetParameters()) yield return ($"constructor parameter {p.Name}", p.ParameterType);
        foreach (var m in type.GetMethods(All))
        {
            yield return ($"return of {m.Name}", m.ReturnType);
            foreach (var p in m.GetParameters()) yield return ($"parameter {p.Name} of {m.Name}", p.ParameterType);
        }
    }

    [Fact]
    public void No_protocol_layer_refers_to_NetworkStack()
    {
        var types = typeof(NetworkStack).Assembly.GetTypes().Where(InProtocolNamespace).ToList();
        Assert.Contains(types, t => t.Name == "TcpConnection"); // the check looks where it should
        Assert.Contains(types, t => t.Name == "Ipv4Layer");

        var offences = types
            .SelectMany(t => Mentions(t).Where(m => Names(m.Type, typeof(NetworkStack))).Select(m => $"{t.FullName}: {m.Where}"))
            .ToList();
        Assert.True(offences.Count == 0, "Protocol layers must not know NetworkStack (give them an interface or the LayerContext):\n" + string.Join("\n", offences));
    }

    [Fact]
    public void Tcp_holds_its_sockets_only_through_its_own_interfaces()
    {
        // The socket API sits above TCP: a connection knows its TcpSocket as an IConnectionUser, a listening port its
        // TcpListener as an IListenerOwner, so a connection can run bare (tests/Stack.Tests/Tcp/BareTcp.cs).
        var socketTypes = new[] { typeof(NetStack.Sockets.TcpSocket), typeof(NetStack.Sockets.TcpListener), typeof(NetStack.Sockets.TcpStream) };
        var types = typeof(NetworkStack).Assembly.GetTypes().Where(t => t.Namespace == "NetStack.Tcp").ToList();
        Assert.Contains(types, t => t.Name == "ListenEndpoint");
        var offences = types
            .SelectMany(t => Mentions(t).Where(m => socketTypes.Any(s => Names(m.Type, s))).Select(m => $"{t.FullName}: {m.Where} ({m.Type.Name})"))
            .ToList();
        Assert.True(offences.Count == 0, "TCP must not name the socket API's types:\n" + string.Join("\n", offences));
    }

    [Fact]
    public void No_protocol_layer_names_the_socket_api()
    {
        // The socket API (NetStack.Sockets) sits above every transport; what both sides share (the netstat row, an
        // endpoint value, the protocol) lives below them in NetStack. A layer that named a socket type could not run bare.
        var types = typeof(NetworkStack).Assembly.GetTypes().Where(InProtocolNamespace).ToList();
        var offences = types
            .SelectMany(t => Mentions(t).Where(m => NamesNamespace(m.Type, "NetStack.Sockets")).Select(m => $"{t.FullName}: {m.Where} ({m.Type.Name})"))
            .ToList();
        Assert.True(offences.Count == 0, "Protocol layers must not name the socket API's types:\n" + string.Join("\n", offences));
        Assert.True(NamesNamespace(typeof(List<NetStack.Sockets.TcpSocket>), "NetStack.Sockets")); // the check can see one
    }

    /// <summary>Core (src/Stack/Core, namespace NetStack): everything but the composition root and the simulation helper.</summary>
    private static bool InCore(Type t)
    {
        var outer = t;
        while (outer.DeclaringType is { } d) outer = d;
        return t.Namespace == "NetStack" && outer != typeof(NetworkStack) && outer != typeof(Simulation);
    }

    [Fact]
    public void Core_names_no_protocol_layers_type()
    {
        // Core sits below every layer (addresses, checksums, the clock, the port allocator, the configuration): a Core
        // type naming IPv4's or TCP's would turn the dependency upside down, and Core could not be built or tested alone.
        var types = typeof(NetworkStack).Assembly.GetTypes().Where(InCore).ToList();
        Assert.Contains(types, t => t.Name == "EphemeralPorts"); // the check looks where it should
        Assert.DoesNotContain(types, t => t == typeof(NetworkStack));
        var offences = types
            .SelectMany(t => Mentions(t).Where(m => ProtocolNamespaces.Any(ns => NamesNamespace(m.Type, ns))).Select(m => $"{t.FullName}: {m.Where} ({m.Type.FullName})"))
            .ToList();
        Assert.True(offences.Count == 0, "Core must not name a protocol layer's types (take a plain value or an interface from Core):\n" + string.Join("\n", offences));
        Assert.True(NamesNamespace(typeof(Func<NetStack.IPv4.IpProtocol, bool>), "NetStack.IPv4")); // the check can see one
    }

    private static bool NamesNamespace(Type t, string ns)
    {
        if (t.Namespace == ns) return true;
        if (t.HasElementType) return NamesNamespace(t.GetElementType()!, ns);
        return t.IsGenericType && t.GetGenericArguments().Any(a => NamesNamespace(a, ns));
    }

    [Fact]
    public void The_check_would_see_a_layer_holding_the_stack()
    {
        // The rule test above is only worth something if it can fail: a type shaped like the old layers trips it.
        Assert.Contains(Mentions(typeof(OldStyleLayer)), m => Names(m.Type, typeof(NetworkStack)));
        Assert.Contains(Mentions(typeof(OldStyleLayer)), m => m.Where == "field _stack");
    }

    private sealed class OldStyleLayer(NetworkStack stack)
    {
        private readonly NetworkStack _stack = stack;
        public override string ToString() => _stack.Name;
    }
}
