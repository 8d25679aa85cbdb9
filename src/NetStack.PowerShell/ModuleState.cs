using System.Management.Automation;
using System.Management.Automation.Runspaces;
using NetStack.Link;

namespace NetStack.PowerShell;

/// <summary>A named in-process Ethernet segment (Start-Stack -VirtualNetwork) with the one clock its stacks share.</summary>
/// <remarks>
/// The wire times deliveries with the sender's clock and the receiver compares them with its own, so every stack on
/// one wire must read the same clock; a SystemClock per stack would start at different instants and delay frames.
/// </remarks>
public sealed class VirtualNetwork
{
    internal VirtualNetwork(string name)
    {
        Name = name;
        Wire = new VirtualWire(seed: StringComparer.OrdinalIgnoreCase.GetHashCode(name));
    }

    public string Name { get; }
    public VirtualWire Wire { get; }
    internal SystemClock Clock { get; } = new();
    public int PortCount => Wire.Ports.Count;
}

/// <summary>
/// Process-wide module state: every stack started by any runspace, and the virtual networks. PowerShell may run
/// several runspaces in one process (ForEach-Object -Parallel, a host's runspace pool), each importing the module
/// against the same loaded assembly, so everything here is guarded by one lock. Protocol state is not here: it
/// lives on each stack's loop.
/// </summary>
internal static class ModuleState
{
    private static readonly object Gate = new();
    private static readonly List<StackInstance> Stacks = new();
    private static readonly Dictionary<string, VirtualNetwork> Networks = new(StringComparer.OrdinalIgnoreCase);
    // Names of stacks stopped lately (until a new stack takes the name), so a stopped stack's name says StackStopped,
    // not StackNotFound, and Stop-Stack by name is idempotent as by object. Bounded: the oldest are forgotten.
    private static readonly Dictionary<string, StackInstance> StoppedByName = new(StringComparer.OrdinalIgnoreCase);
    private const int StoppedNamesKept = 256;
    // Runspaces that imported the module, held weakly: a runspace that closes without Remove-Module (ForEach-Object
    // -Parallel, a disposed PowerShell) must not keep the last real Remove-Module from stopping everything.
    private static readonly Dictionary<Guid, WeakReference<Runspace>> ImportedBy = new();
    private static long _order;
    private static bool _exitHooked;

    /// <summary>A runspace imported the module.</summary>
    public static void OnImport(Runspace? runspace)
    {
        lock (Gate)
        {
            if (runspace != null) ImportedBy[runspace.InstanceId] = new WeakReference<Runspace>(runspace);
            if (!_exitHooked)
            {
                // A process that exits with stacks running still releases adapters and completes capture files.
                AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAll();
                _exitHooked = true;
            }
        }
    }

    /// <summary>
    /// A runspace removed the module (Remove-Module, or the runspace closed): the stacks it started stop; when no
    /// runspace has the module imported any more, every stack stops and the virtual networks are forgotten.
    /// </summary>
    public static void OnRemove(Guid runspace)
    {
        List<StackInstance> stop;
        lock (Gate)
        {
            ImportedBy.Remove(runspace);
            foreach (var (id, weak) in ImportedBy.ToList())
                if (!weak.TryGetTarget(out var r) || r.RunspaceStateInfo.State is not (RunspaceState.Opened or RunspaceState.Opening or RunspaceState.BeforeOpen))
                    ImportedBy.Remove(id);
            stop = ImportedBy.Count == 0 ? Stacks.ToList() : Stacks.Where(s => s.OwnerRunspace == runspace).ToList();
        }
        foreach (var s in stop) Stop(s);
        lock (Gate)
        {
            if (ImportedBy.Count == 0)
            {
                Networks.Clear();
                StoppedByName.Clear();
            }
        }
    }

    public static void StopAll()
    {
        List<StackInstance> all;
        lock (Gate) all = Stacks.ToList();
        foreach (var s in all) Stop(s);
    }

    /// <summary>Adds a started stack; fails if its name is taken (names identify stacks across runspaces).</summary>
    public static bool TryRegister(StackInstance instance)
    {
        lock (Gate)
        {
            if (Stacks.Any(s => string.Equals(s.Name, instance.Name, StringComparison.OrdinalIgnoreCase))) return false;
            StoppedByName.Remove(instance.Name);
            instance.Order = ++_order;
            Stacks.Add(instance);
            return true;
        }
    }

    public static bool IsNameTaken(string name)
    {
        lock (Gate) return Stacks.Any(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Stops the stack (closing its sockets, releasing its link, flushing its capture) and forgets it.</summary>
    public static void Stop(StackInstance instance)
    {
        EmbeddedLab.BeforeStop(instance); // a service host's services end before its stack
        lock (Gate)
        {
            if (Stacks.Remove(instance))
            {
                if (StoppedByName.Count >= StoppedNamesKept)
                    StoppedByName.Remove(StoppedByName.MinBy(kv => kv.Value.Order).Key);
                StoppedByName[instance.Name] = StackInstance.Stopped(instance.Name, instance.Order);
            }
        }
        instance.Shutdown();
        if (instance.VirtualNetwork is { } net)
        {
            lock (Gate)
            {
                if (Networks.TryGetValue(net, out var n) && n.PortCount == 0) Networks.Remove(net);
            }
        }
        EmbeddedLab.AfterStop(instance); // a service host left alone on its network stops too
    }

    public static StackInstance? Find(string name)
    {
        lock (Gate) return Stacks.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The stack of that name: running, else stopped lately (StackStopped), else a placeholder for StackNotFound.</summary>
    public static StackInstance Lookup(string name) => Find(name) ?? FindStopped(name) ?? StackInstance.Missing(name);

    /// <summary>A placeholder for a stack of that name that was stopped lately (and not started again), or null.</summary>
    public static StackInstance? FindStopped(string name)
    {
        lock (Gate) return StoppedByName.GetValueOrDefault(name);
    }

    /// <summary>The most recently started stack that is still running.</summary>
    public static StackInstance? Latest()
    {
        lock (Gate) return Stacks.Count == 0 ? null : Stacks.MaxBy(s => s.Order);
    }

    public static StackInstance[] All()
    {
        lock (Gate) return Stacks.OrderBy(s => s.Order).ToArray();
    }

    public static VirtualNetwork GetOrCreateNetwork(string name)
    {
        lock (Gate)
        {
            if (!Networks.TryGetValue(name, out var n)) Networks[name] = n = new VirtualNetwork(name);
            return n;
        }
    }

    public static VirtualNetwork[] AllNetworks()
    {
        lock (Gate) return Networks.Values.ToArray();
    }

    public static Guid CurrentRunspaceId => Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;
}

/// <summary>Hooks module import and removal (Import-Module / Remove-Module) into <see cref="ModuleState"/>.</summary>
public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport() => ModuleState.OnImport(Runspace.DefaultRunspace);

    public void OnRemove(PSModuleInfo psModuleInfo) => ModuleState.OnRemove(ModuleState.CurrentRunspaceId);
}
