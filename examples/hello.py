"""The smallest useful flow: three steps in a line.

    flowc check examples/hello.py
    flowc graph examples/hello.py
    flowc run examples/hello.py --person Ada
"""

from metaflow import FlowSpec, Parameter, step


class HelloFlow(FlowSpec):
    """Greet someone, then say goodbye."""

    person = Parameter("person", default="world", help="Who to greet")

    @step
    def start(self):
        """Build the greeting; every `self.` attribute becomes a stored artifact."""
        self.greeting = f"Hello, {self.person}!"
        self.next(self.shout)

    @step
    def shout(self):
        self.greeting = self.greeting.upper()
        self.next(self.end)

    @step
    def end(self):
        """The last step has no `self.next`."""
        print(self.greeting)


if __name__ == "__main__":
    HelloFlow()
