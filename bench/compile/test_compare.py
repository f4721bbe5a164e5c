"""Tests of the compile benchmark's own logic: output checks, the flow generators, the
summary. `python3 -m unittest discover -s bench/compile` (no Metaflow, moto or cargo
needed; `flowgen.py --check-rust` compares the generator with the Rust one)."""

import json
import os
import re
import tempfile
import unittest

import compare
import flowgen


class OutputChecks(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="compile-bench-test-")

    def tearDown(self):
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_metaflow_argo_output_must_be_a_workflow_template(self):
        ok = self.write("ok", json.dumps({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate"}))
        other = self.write("other", json.dumps({"kind": "CronWorkflow"}))
        text = self.write("text", "Deploying HelloFlow...\n")
        self.assertIsNone(compare.check_metaflow_output("argo", ok))
        self.assertIn("not a WorkflowTemplate", compare.check_metaflow_output("argo", other))
        self.assertIn("not JSON", compare.check_metaflow_output("argo", text))

    def test_metaflow_sfn_output_must_hold_a_state_machine(self):
        ok = self.write("ok", json.dumps({"StartAt": "start", "States": {"start": {"Type": "Task"}}}))
        no_start = self.write("bad", json.dumps({"States": {}}))
        self.assertIsNone(compare.check_metaflow_output("sfn", ok))
        self.assertIsNotNone(compare.check_metaflow_output("sfn", no_start))

    def test_flowc_argo_output_needs_the_workflow_template_file(self):
        self.assertIn("no WorkflowTemplate", compare.check_flowc_output("argo", self.dir))
        self.write("helloflow.cron-workflow.yaml", "kind: CronWorkflow\n")
        self.assertIsNotNone(compare.check_flowc_output("argo", self.dir))
        self.write("helloflow.workflow-template.yaml", "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n")
        self.assertIsNone(compare.check_flowc_output("argo", self.dir))

    def test_flowc_sfn_output_may_nest_the_state_machine(self):
        self.write("broken.json", "{")
        self.assertIsNotNone(compare.check_flowc_output("sfn", self.dir))
        nested = {"stateMachine": {"definition": {"StartAt": "start", "States": {"start": {}}}}}
        self.write("flow.sfn.json", json.dumps(nested))
        self.assertIsNone(compare.check_flowc_output("sfn", self.dir))

    def test_error_summary_keeps_the_last_lines_without_colours(self):
        path = self.write("stderr", "Deploying HelloFlow...\n\n    \x1b[31mAWS Step Functions error:\x1b[0m\n"
                                    "    Switches are not supported.\n\n")
        self.assertEqual(compare.error_summary(path), "AWS Step Functions error: / Switches are not supported.")
        long = self.write("long", "x" * 1000)
        self.assertEqual(len(compare.error_summary(long, limit=50)), 53)


    def test_error_summary_reads_flowc_diagnostics(self):
        path = self.write("flowc", "flowc::argo::document-too-large\n\n  \u00d7 the template is 1443346 bytes, over\n"
                                   "  \u2502 the limit\n   \u256d\u2500[f.py:6:7]\n 6 \u2502 class F:\n"
                                   "   \u2570\u2500\u2500\u2500\u2500\n  help: split the flow\n")
        self.assertEqual(compare.error_summary(path),
                         "the template is 1443346 bytes, over the limit / help: split the flow")


class Generators(unittest.TestCase):
    def test_step_count_reads_every_spelling(self):
        text = ("    @step(start=True)\n    def a(self): ...\n    @mf.step\n    def b(self): ...\n"
                "    @metaflow.step  # last\n    def end(self): ...\n    @stepper\n    @step_x\n")
        self.assertEqual(compare.count_steps(text), 3)

    def steps(self, text):
        return re.findall(r"^    def (\w+)\(", text, re.M)

    def test_linear_has_exactly_the_steps_asked_for(self):
        for n in (2, 10, 1000):
            names = self.steps(flowgen.linear(n))
            self.assertEqual(len(names), n)
            self.assertEqual((names[0], names[-1]), ("start", "end"))

    def test_wide_is_one_split_closed_by_one_join(self):
        text = flowgen.wide(5)
        self.assertEqual(len(self.steps(text)), 8)
        self.assertEqual(text.count("self.next(self.join)"), 5)
        self.assertIn("def join(self, inputs):", text)

    def test_generated_is_deterministic_and_sized(self):
        self.assertEqual(flowgen.generated(100, 42), flowgen.generated(100, 42))
        self.assertNotEqual(flowgen.generated(100, 42), flowgen.generated(100, 7))
        for n in (2, 10, 100):
            self.assertEqual(len(self.steps(flowgen.generated(n, 42))), n)

    def test_generated_flows_are_valid_python(self):
        for n in (10, 100):
            compile(flowgen.generated(n, 42), "generated.py", "exec")
            compile(flowgen.linear(n), "linear.py", "exec")
            compile(flowgen.wide(n), "wide.py", "exec")


class Summary(unittest.TestCase):
    def test_geometric_mean_and_failures(self):
        rows = [
            {"flow": "a", "target": "argo", "status": "timed", "flowc_median": 0.01, "metaflow_median": 1.0,
             "ratio": 100.0},
            {"flow": "b", "target": "argo", "status": "timed", "flowc_median": 0.01, "metaflow_median": 4.0,
             "ratio": 400.0},
            {"flow": "c", "target": "argo", "status": "metaflow-failed", "error": "x"},
            {"flow": "d", "target": "sfn", "status": "flowc-target-missing", "metaflow_status": "metaflow-failed"},
        ]
        s = compare.summarize(rows, ["argo", "sfn"])
        self.assertEqual(s["argo"]["geomean_ratio"], 200.0)
        self.assertTrue(s["argo"]["target_met"])
        self.assertEqual(s["argo"]["metaflow_cannot_compile"], ["c"])
        self.assertEqual(s["sfn"]["timed"], 0)
        self.assertTrue(s["sfn"]["flowc_target_missing"])
        self.assertEqual(s["sfn"]["metaflow_cannot_compile"], ["d"])
        self.assertFalse(s["sfn"]["target_met"])

    def test_markdown_lists_timed_and_untimed_flows(self):
        timed = {"flow": "linear-10", "target": "argo", "status": "timed", "steps": 10, "flowc_median": 0.02,
                 "metaflow_median": 3.0, "ratio": 150.0, "flowc_cpu_median": 0.005, "metaflow_cpu_median": 1.5,
                 "cpu_ratio": 300.0}
        failed = {"flow": "fixtures/conda_env", "target": "argo", "status": "metaflow-failed", "steps": 3,
                  "error": "exit 1: @conda needs --environment=conda"}
        report = {"summary": compare.summarize([timed, failed], ["argo"]), "flows": [timed, failed]}
        text = compare.markdown(report)
        self.assertIn("| `linear-10` | 10 | 20.0 | 3.00 | 150x | 5.0 | 1.50 | 300x |", text)
        self.assertIn("- `fixtures/conda_env`: Metaflow cannot compile it (exit 1: @conda needs", text)
        self.assertIn("geometric mean 150x over 1 flows", text)

    def test_arguments_are_validated(self):
        with self.assertRaises(SystemExit):
            compare.parse_args(["--targets", "nomad"])
        with self.assertRaises(SystemExit):
            compare.parse_args(["--linear", "1"])
        args = compare.parse_args(["--flowc-arg", "sfn=--job-queue=q", "--only", "wide"])
        self.assertEqual(args.flowc_extra, {"sfn": ["--job-queue=q"]})
        self.assertTrue(args.only_re.search("wide-100"))


if __name__ == "__main__":
    unittest.main()
