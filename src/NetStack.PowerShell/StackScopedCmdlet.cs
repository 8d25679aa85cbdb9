using System.Management.Automation;

namespace NetStack.PowerShell;

/// <summary>
/// Base of cmdlets that act on one stack: the -Stack parameter (object or name, by property name). Without -Stack, a
/// view of state (<see cref="ShowsEveryStack"/>) shows every running stack, each row naming its stack; anything else
/// acts on the most recently started stack (the default stack) and says so in its verbose output.
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

    /// <summary>True for views (connections, ARP cache, counters): without -Stack they show every running stack.</summary>
    protected virtual bool ShowsEveryStack => false;

    protected override void ProcessRecord()
    {
        var given = Stack ?? ImpliedStack();
        if (given is null && ShowsEveryStack)
        {
            var all = ModuleState.All();
            if (all.Length == 0) ResolveStack(null); // StackNotStarted
            foreach (var s in all)
            {
                if (s.IsStopped) continue; // stopped while we went through the list
                Target = s;
                ProcessStack(s);
            }
            return;
        }
        Target = ResolveStack(given);
        if (given is null && ModuleState.All().Length > 1)
            WriteVerbose($"Using stack '{Target.Name}', the most recently started; name another with -Stack.");
        ProcessStack(Target);
    }

    /// <summary>The stack the input itself points to when -Stack is not given (a socket knows its stack).</summary>
    protected virtual StackInstance? ImpliedStack() => null;

    protected abstract void ProcessStack(StackInstance stack);
}
