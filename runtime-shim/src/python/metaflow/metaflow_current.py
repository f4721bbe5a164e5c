"""`current`: what a running step can learn about its own task (flow, run, step, task, retry)."""


class Current:
    """Task context, filled in by the flowc harness before the step runs.

    Outside a running flow every property is None (and `is_running_flow` is False), as
    with Metaflow, so code that imports `current` at module level keeps working.
    """

    def __init__(self):
        self._env = {}

    def _set_env(self, **values):
        self._env = dict(values)

    def _update_env(self, values):
        self._env.update(values)

    def __contains__(self, key):
        return key in self._env

    def get(self, key, default=None):
        return self._env.get(key, default)

    @property
    def is_running_flow(self):
        return bool(self._env.get("is_running_flow", False))

    @property
    def flow_name(self):
        return self._env.get("flow_name")

    @property
    def run_id(self):
        return self._env.get("run_id")

    @property
    def step_name(self):
        return self._env.get("step_name")

    @property
    def task_id(self):
        return self._env.get("task_id")

    @property
    def retry_count(self):
        return self._env.get("retry_count", 0)

    @property
    def origin_run_id(self):
        return self._env.get("origin_run_id")

    @property
    def pathspec(self):
        parts = (self.flow_name, self.run_id, self.step_name, self.task_id)
        if any(p is None for p in parts):
            return None
        return "/".join(parts)

    @property
    def username(self):
        return self._env.get("username")

    @property
    def namespace(self):
        user = self.username
        return "user:%s" % user if user else None

    @property
    def tags(self):
        return list(self._env.get("tags", ()))

    @property
    def parameter_names(self):
        return list(self._env.get("parameter_names", ()))

    @property
    def card(self):
        """The step's cards (`@card`): `current.card.append(Markdown(...))`,
        `current.card["id"].append(...)`. Outside a running step with cards it still
        answers, dropping what is appended after one warning."""
        collector = self._env.get("card")
        if collector is None:
            from .cards import CardComponentCollector

            collector = CardComponentCollector()
            self._env["card"] = collector
        return collector

    @property
    def tempdir(self):
        return self._env.get("tempdir")

    def __repr__(self):
        if not self.is_running_flow:
            return "<current: not running a flow>"
        return "<current %s attempt %d>" % (self.pathspec, self.retry_count)


current = Current()
