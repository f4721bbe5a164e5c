"""flowc's Python package: `flowc.client` and `flowc.runner` are the client and Runner
APIs of the `metaflow` compatibility package under flowc's own name.

    from flowc.client import Flow
    Flow('TrainFlow').latest_run.data.model
"""

__version__ = "flowc"
