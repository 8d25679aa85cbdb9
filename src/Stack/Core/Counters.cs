using System.Reflection;

namespace NetStack;

/// <summary>
/// Base for a layer's counters: public long fields, bumped on the loop thread without locks.
/// Snapshots are taken on the loop (see <see cref="NetworkStack.GetStatisticsAsync"/>).
/// </summary>
public abstract class LayerCounters
{
    public abstract string Layer { get; }

    /// <summary>Every counter of this layer as (name, value), in declaration order.</summary>
    public IEnumerable<StackCounter> Read()
    {
        foreach (var f in GetType().GetFields(BindingFlags.Public | BindingFlags.Instance))
            if (f.FieldType == typeof(long))
                yield return new StackCounter(Layer, f.Name, (long)f.GetValue(this)!);
    }
}

/// <summary>One counter's value at snapshot time.</summary>
public sealed record StackCounter(string Layer, string Name, long Value);
