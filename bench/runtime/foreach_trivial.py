"""A foreach of `width` trivial tasks: what each tool spends per task, beyond the step.

Runs unchanged under Metaflow (`python foreach_trivial.py run --width 100`) and under
flowc (`flowc run foreach_trivial.py --width 100`).
"""

import json
import os

from metaflow import FlowSpec, Parameter, step


class ForeachTrivialFlow(FlowSpec):
    width = Parameter("width", type=int, default=10, help="number of foreach tasks")

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        # The step itself does next to nothing, so the time measured is the runtime's.
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        # Reading every input's artifact is part of the workload on both sides.
        # (Metaflow's `inputs` has no len(), so count while iterating.)
        values = [inp.value for inp in inputs]
        self.total = sum(values)
        self.count = len(values)
        self.next(self.end)

    @step
    def end(self):
        # The benchmark checks the result through this file: it needs no client
        # library of either tool, and it proves the join read every value.
        out = os.environ.get("BENCH_RESULT_FILE")
        if out:
            with open(out, "w") as f:
                json.dump({"count": self.count, "total": self.total}, f)


if __name__ == "__main__":
    ForeachTrivialFlow()
