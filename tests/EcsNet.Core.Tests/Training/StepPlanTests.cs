using System.Text.Json;
using EcsNet.Core.Training;

namespace EcsNet.Core.Tests.Training;

public sealed class TrainingLoopTests
{
    [Fact]
    public void Step_plan_walks_each_epoch_through_its_own_shuffle_and_drops_the_partial_batch()
    {
        // 10 samples, batch 4: 2 full batches per epoch (samples at positions 8 and 9 of the order are dropped)
        var plan = new StepPlan(10, 4, 3, seed: 5);
        Assert.Equal(2, plan.PerEpoch);
        Assert.Equal(6, plan.MaxSteps);
        for (var epoch = 0; epoch < 3; epoch++)
        {
            var order = StepPlan.EpochOrder(10, 5, epoch);
            Assert.Equal(Enumerable.Range(0, 10), order.Order());
            var taken = new List<int>();
            for (var step = 2 * epoch; step < 2 * epoch + 2; step++)
            {
                Assert.Equal(epoch, plan.Epoch(step));
                for (var i = 0; i < 4; i++)
                    taken.Add(plan.SampleAt(step, i));
            }
            Assert.Equal(order.Take(8), taken);   // the order's first 8, in order, no repeats
        }
        Assert.NotEqual(StepPlan.EpochOrder(10, 5, 0), StepPlan.EpochOrder(10, 5, 1));
        // the salt separates stages that share a seed; the same arguments give the same order
        Assert.NotEqual(StepPlan.EpochOrder(10, 5, 0), StepPlan.EpochOrder(10, 5, 0, salt: -12));
        Assert.Equal(StepPlan.EpochOrder(10, 5, 2), StepPlan.EpochOrder(10, 5, 2));
    }

    [Fact]
    public void Step_plan_answers_out_of_order_steps_the_same_as_in_order_ones()
    {
        // resuming jumps into the middle of a run: the answer must not depend on what was asked before
        var walked = new StepPlan(7, 3, 4, seed: 1);
        var expected = Enumerable.Range(0, walked.MaxSteps).Select(s => walked.SampleAt(s, 1)).ToArray();
        var jumping = new StepPlan(7, 3, 4, seed: 1);
        foreach (var s in new[] { 5, 0, 7, 2, 2, 6, 1 })
            Assert.Equal(expected[s], jumping.SampleAt(s, 1));
    }

    [Fact]
    public void Step_plan_with_fewer_samples_than_a_batch_still_takes_one_step_per_epoch()
    {
        var plan = new StepPlan(3, 8, 2, seed: 0);
        Assert.Equal(1, plan.PerEpoch);
        Assert.Equal(2, plan.MaxSteps);
        var order = StepPlan.EpochOrder(3, 0, 0);
        Assert.Equal(new[] { order[0], order[1], order[2], order[0] }, Enumerable.Range(0, 4).Select(i => plan.SampleAt(0, i)));
        Assert.Throws<ArgumentException>(() => new StepPlan(0, 8, 2, seed: 0));
    }

    [Theory]
    [InlineData(5, 20, 5, false, true)]
    [InlineData(6, 20, 5, false, false)]
    [InlineData(20, 20, 7, false, true)]   // the last step
    [InlineData(3, 20, 7, true, true)]     // stopping early
    [InlineData(3, 20, 0, false, true)]    // every ≤ 0 means every step
    public void Checkpoints_fall_on_the_cadence_the_last_step_and_an_early_stop(int step, int max, int every, bool stopping, bool due) =>
        Assert.Equal(due, TrainingRecorder.CheckpointDue(step, max, every, stopping));

    [Fact]
    public void Recorder_appends_one_json_line_per_step_and_a_non_root_writes_nothing()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ecsnet-recorder-" + Guid.NewGuid().ToString("N"));
        var quiet = Path.Combine(dir, "rank1");
        Directory.CreateDirectory(quiet);
        try
        {
            using (var recorder = new TrainingRecorder(dir))
            {
                recorder.Record(1, new { step = 1, loss = 0.5 }, ("loss", 0.5));
                recorder.Record(2, new { step = 2, loss = 0.25 }, ("loss", 0.25));
            }
            using (var again = new TrainingRecorder(dir))   // a resumed run appends
                again.Record(3, new { step = 3, loss = 0.125 });
            var lines = File.ReadAllLines(Path.Combine(dir, "train-log.jsonl"));
            Assert.Equal(new[] { 0.5, 0.25, 0.125 }, lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()));
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, "tensorboard"), "*", SearchOption.AllDirectories));

            using (var rank1 = new TrainingRecorder(quiet, writes: false))
                rank1.Record(1, new { step = 1 }, ("loss", 1.0));
            Assert.Empty(Directory.GetFileSystemEntries(quiet));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
