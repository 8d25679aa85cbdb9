using System.Management.Automation;

namespace NetStack.PowerShell;

/// <summary>
/// Base of cmdlets that act on one stack: the -Stack parameter (object or name, by property name). Without -Stack they
/// act on the most recently started stack (the default stack) and say so in their verbose output. The read-only views
/// take several stacks instead: <see cref="StackViewCmdlet"/>.
/// </summary>
public abstract class StackScopedCmdlet : NetStackCmdlet
{
    /// <summary>The stack to act on (object or name); the most recently started one if omitted.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [StackTransformation]
    [ArgumentCompleter(typeof(StackNameCompleter))]
    public StackInstance? Stack { get; set; }

    /// <summary>The resolved stack (set at the start of each record).</summary>
    protected StackInstance Target { get; private set; } = null!;

    protected override void ProcessRecord()
    {
        var given = Stack ?? ImpliedStack();
        Target = given is null ? DefaultStack() : ResolveStack(given);
        ProcessStack(Target);
    }

    /// <summary>The stack the input itself points to when -Stack is not given (a socket knows its stack).</summary>
    protected virtual StackInstance? ImpliedStack() => null;

    protected abstract void ProcessStack(StackInstance stack);
}

/// <summary>
/// Base of the read-only views of state (connections, ARP cache, counters, the packet log): -Stack takes one stack or
/// several (names, objects, or stacks piped from Get-Stack), and without it every running stack (the packet log: the
/// default stack); each row names its stack (its Stack property), so the output groups by it. An unknown or stopped
/// stack among several ends the command there, as Stop-Stack does.
/// </summary>
public abstract class StackViewCmdlet : NetStackCmdlet
{
    /// <summary>The stacks to show (objects or names); every running stack if omitted (<see cref="ShowsEveryStack"/>).</summary>
    [Parameter(ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [StackTransformation]
    [ArgumentCompleter(typeof(StackNameCompleter))]
    public StackInstance?[]? Stack { get; set; }

    /// <summary>False for a view that without -Stack shows the default stack only (the packet log: logs of several
    /// stacks one after the other are read best one stack at a time).</summary>
    protected virtual bool ShowsEveryStack => true;

    protected override void ProcessRecord()
    {
        if (Stack is { Length: > 0 } given)
        {
            foreach (var s in given)
                if (s is not null) ProcessStack(ResolveStack(s));
            return;
        }
        if (!ShowsEveryStack)
        {
            ProcessStack(DefaultStack());
            return;
        }
        var all = ModuleState.All();
        if (all.Length == 0) ResolveStack(null); // StackNotStarted
        foreach (var s in all)
        {
            if (s.IsStopped) continue; // stopped while we went through the list
            ProcessStack(s);
        }
    }

    protected abstract void ProcessStack(StackInstance stack);
}
