"""A training flow: a static branch (baseline vs. tuned model) where the tuned arm
fans out over hyperparameters with a foreach.

    flowc check examples/training.py
    flowc graph examples/training.py --format mermaid
"""

from metaflow import FlowSpec, Parameter, card, resources, retry, step

GB = 1024


class TrainingFlow(FlowSpec):
    """Compare a tuned gradient-boosting model with a simple baseline."""

    max_depths = Parameter(
        "max-depths",
        default="2,4,8",
        separator=",",
        help="Comma-separated tree depths to try",
    )
    seed = Parameter("seed", type=int, default=42)

    @step
    def start(self):
        """Make a toy dataset and start both arms of the comparison."""
        import random

        rng = random.Random(self.seed)
        self.rows = [(rng.random(), rng.random()) for _ in range(1000)]
        self.next(self.baseline, self.tune)

    @step
    def baseline(self):
        """Predict the mean: the score every model must beat."""
        self.score = 0.5
        self.next(self.compare)

    @step
    def tune(self):
        """Fan out: one `train` task per depth."""
        self.depths = [int(d) for d in self.max_depths]
        self.next(self.train, foreach="depths")

    @resources(cpu=2, memory=4 * GB)
    @retry(times=2)
    @step
    def train(self):
        """Train one model; `self.input` is this task's depth."""
        self.depth = self.input
        self.score = 1 - 1 / (2 + self.depth)
        self.next(self.pick_best)

    @step
    def pick_best(self, inputs):
        """Join the foreach: keep the best depth."""
        best = max(inputs, key=lambda task: task.score)
        self.depth, self.score = best.depth, best.score
        self.next(self.compare)

    @card
    @step
    def compare(self, inputs):
        """Join the branch: how much better is the tuned model?"""
        self.lift = inputs.pick_best.score - inputs.baseline.score
        self.best_depth = inputs.pick_best.depth
        self.next(self.end)

    @step
    def end(self):
        print(f"depth {self.best_depth} beats the baseline by {self.lift:.3f}")


if __name__ == "__main__":
    TrainingFlow()
