"""Packaging checks: the install rules, the Dockerfile, deploy/docker/seccomp.json,
scripts/packages.txt, the scripts and the README agree.

`cmake --install` into a temporary prefix gives a server that finds its Chromium profile
template there (a browser session starts from the installed copy, not the source tree's).
The image itself is built and run by scripts/check-docker.sh (the last step of .ci/run); here
the Dockerfile is read: both stages start from Debian 12 slim and install their packages with
scripts/install-deps.sh (the list a host uses), the build stage installs with `cmake --install`,
the runtime stage runs as a non-root user on 0.0.0.0 with a HEALTHCHECK on /health, and every
shared library build/sandboxd links comes from a package the runtime stage installs. The
seccomp profile is Docker's default plus the additions deploy/docker/README.md explains.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BIN, SOURCE_DIR, Server, wait_until

PACKAGES = os.path.join(SOURCE_DIR, "scripts", "packages.txt")
INSTALL = os.path.join(SOURCE_DIR, "scripts", "install-deps.sh")
DOCKERFILE = os.path.join(SOURCE_DIR, "Dockerfile")
README = os.path.join(SOURCE_DIR, "README.md")
SECCOMP = os.path.join(SOURCE_DIR, "deploy", "docker", "seccomp.json")
SECCOMP_DOC = os.path.join(SOURCE_DIR, "deploy", "docker", "README.md")

BUILD_NEEDS = {"build-essential", "cmake", "pkg-config", "libmicrohttpd-dev", "libwebsockets-dev",
               "libcjson-dev", "libseccomp-dev", "zlib1g-dev", "libcurl4-openssl-dev"}
RUNTIME_NEEDS = {"chromium", "python3", "python3-numpy", "python3-pandas", "ca-certificates",
                 "fonts-liberation", "libmicrohttpd12", "libwebsockets17", "libcjson1",
                 "libseccomp2", "zlib1g", "libcurl4"}
# In every Debian image already (dpkg itself needs them), so never listed.
BASE_IMAGE = {"libc6", "libgcc-s1"}


def listed(*groups):
    """Package names of these groups, as install-deps.sh itself reports them."""
    out = subprocess.run(["bash", INSTALL, "--list", *groups], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return out.split()


def dockerfile_stages():
    """{stage name: [instruction lines, continuations joined]} of the Dockerfile."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            cur = m.group(2) or str(len(stages))
            stages[cur] = [line]
        elif cur is not None:
            stages[cur].append(line)
    return stages


def default_arg(name):
    with open(DOCKERFILE) as f:
        m = re.search(r"^ARG\s+%s=(\S+)" % name, f.read(), re.M)
    return m.group(1) if m else None


def installed_groups(stage_lines):
    """Groups the stage passes to install-deps.sh, and packages it names to apt-get itself."""
    groups, direct = set(), set()
    for line in stage_lines:
        if not line.upper().startswith("RUN "):
            continue
        for cmd in re.split(r"&&|;|\|\|", line[4:]):
            words = shlex.split(cmd)
            if words and words[0].endswith("install-deps.sh"):
                groups.update(w for w in words[1:] if not w.startswith("-"))
            if len(words) > 1 and words[0] in ("apt-get", "apt") and "install" in words:
                direct.update(w for w in words[words.index("install") + 1:]
                              if not w.startswith("-"))
    return groups, direct


class PackageListTest(unittest.TestCase):
    def test_groups_name_what_the_build_and_the_server_need(self):
        self.assertLessEqual(BUILD_NEEDS, set(listed("build")))
        self.assertLessEqual(RUNTIME_NEEDS, set(listed("runtime")))
        self.assertIn("clang-format", listed("test"))
        for pkg in listed("build") + listed("runtime"):
            self.assertNotIn(pkg, listed("image"), "image lists only what hosts do not need")

    def test_every_host_package_is_a_real_installed_debian_package(self):
        # scripts/test.sh installed these before the suite ran; a name that apt does not know
        # would have failed there, and one installed by hand only would not be listed.
        if subprocess.run(["which", "dpkg-query"], capture_output=True).returncode != 0:
            self.skipTest("not a Debian system")
        # what an installed package provides counts too (nodesource's nodejs provides npm)
        r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Provides}\n"],
                           capture_output=True, text=True)
        provided = set()
        for line in r.stdout.splitlines():
            if line.startswith("installed "):
                for item in line[len("installed "):].split(","):
                    if item.split():
                        provided.add(item.split()[0])
        for pkg in listed("build", "runtime", "test"):
            r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}\n", pkg],
                               capture_output=True, text=True)
            self.assertTrue("installed" in r.stdout.split() or pkg in provided,
                            f"{pkg} is not installed: run scripts/install-deps.sh")

    def test_runtime_group_provides_every_library_sandboxd_links(self):
        if subprocess.run(["which", "dpkg"], capture_output=True).returncode != 0:
            self.skipTest("not a Debian system")
        # Direct dependencies only (what the binary names); apt brings in theirs.
        dyn = subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True, timeout=30)
        self.assertEqual(dyn.returncode, 0, dyn.stderr)
        needed = re.findall(r"\(NEEDED\).*\[(\S+)\]", dyn.stdout)
        ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True, timeout=30)
        self.assertEqual(ldd.returncode, 0, ldd.stderr)
        where = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M))
        provided = self.closure(listed("runtime", "image"))
        from_list = 0
        for soname in needed:
            if re.match(r"lib(asan|ubsan|lsan|tsan)\.", soname):
                continue  # the sanitizer build's own runtime, not in the image
            self.assertIn(soname, where, f"ldd cannot find {soname}")
            owner = self.owner(where[soname])
            self.assertIsNotNone(owner, f"no package owns {where[soname]}")
            if owner in BASE_IMAGE:
                continue
            self.assertTrue(owner in provided,
                            f"build/sandboxd links {soname} from {owner}, which the runtime "
                            "group of scripts/packages.txt neither lists nor pulls in "
                            "(the image would lack it)")
            from_list += 1
        self.assertGreaterEqual(from_list, 2, dyn.stdout)  # libmicrohttpd and cJSON at least

    @staticmethod
    def closure(pkgs):
        """pkgs and every installed package they depend on, directly or not (what apt would
        install with them)."""
        seen, todo = set(), list(pkgs)
        while todo:
            pkg = todo.pop()
            if pkg in seen:
                continue
            seen.add(pkg)
            r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                               capture_output=True, text=True)
            for alt in r.stdout.split(","):
                for dep in alt.split("|"):
                    name = re.sub(r"\(.*?\)|:\S+", "", dep).strip()
                    if name and name not in seen:
                        todo.append(name)
        return seen

    @staticmethod
    def owner(path):
        """The Debian package that installed path (trying the /usr-merged spellings)."""
        real = os.path.realpath(path)
        names = {path, real}
        for p in list(names):
            names.add(p[4:] if p.startswith("/usr/") else "/usr" + p)
        for p in sorted(names):
            r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.split(":")[0].strip()
        return None


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = dockerfile_stages()
        names = list(cls.stages)
        cls.build, cls.runtime = cls.stages[names[0]], cls.stages[names[-1]]

    def test_two_stages_from_debian_12_slim(self):
        self.assertGreaterEqual(len(self.stages), 2)
        for lines in self.stages.values():
            image = lines[0].split()[1]
            if image.startswith("${"):
                image = default_arg(image.strip("${}"))
            self.assertEqual(image, "debian:bookworm-slim")

    def test_build_stage_installs_the_build_group_and_builds_sandboxd(self):
        groups, direct = installed_groups(self.build)
        self.assertIn("build", groups)
        self.assertLessEqual(direct, set(listed("build")))
        self.assertTrue(any("cmake --build" in l for l in self.build))

    def test_runtime_stage_installs_the_same_runtime_packages_as_a_host(self):
        groups, direct = installed_groups(self.runtime)
        self.assertIn("runtime", groups)
        self.assertNotIn("build", groups, "the runtime image must not carry compilers")
        self.assertNotIn("test", groups)
        self.assertEqual(direct, set(), "install packages via scripts/packages.txt only")
        # The script the stage runs is the one a host runs, from the same list.
        copied = " ".join(l for l in self.runtime if l.upper().startswith("COPY "))
        self.assertIn("scripts/install-deps.sh", copied)
        self.assertIn("scripts/packages.txt", copied)

    def test_runtime_stage_runs_sandboxd_as_non_root_on_all_interfaces(self):
        text = "\n".join(self.runtime)
        users = re.findall(r"^USER\s+(\S+)", text, re.M)
        self.assertTrue(users, "no USER in the runtime stage")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))
        self.assertRegex(text, r"\bHOST=0\.0\.0\.0\b")
        self.assertRegex(text, r"\bPORT=8080\b")
        self.assertRegex(text, r"(?m)^EXPOSE\s+8080\b")
        self.assertRegex(text, r"DATA_DIR=/var/lib/sandboxd\b")
        self.assertIn("/usr/local/bin/sandboxd", text.split("ENTRYPOINT")[-1])

    def test_image_holds_what_cmake_install_installs(self):
        # The build stage installs into a staging root; the runtime stage copies that tree, so
        # the binary finds its profile template the way any install does (no setting needed).
        build = "\n".join(self.build)
        self.assertRegex(build, r"DESTDIR=(\S+) cmake --install build\b")
        self.assertIn("-DCMAKE_INSTALL_PREFIX=/usr/local", build)
        dest = re.search(r"DESTDIR=(\S+) cmake --install", build).group(1)
        copies = [l for l in self.runtime if l.startswith("COPY --from=")]
        self.assertIn(f"COPY --from=build {dest}/usr/local/ /usr/local/", copies)
        self.assertNotIn("CHROMIUM_PROFILE_DIR", "\n".join(self.runtime))

    def test_healthcheck_probes_health(self):
        hc = [l for l in self.runtime if l.upper().startswith("HEALTHCHECK")]
        self.assertEqual(len(hc), 1)
        self.assertRegex(hc[0], r"http://127\.0\.0\.1:[^/\s]*/health\b(?![-\w/])")
        probe = hc[0].split("CMD", 1)[1].split()[0]
        self.assertIn(probe, listed("runtime", "image"), "the probe's package must be installed")


class SeccompProfileTest(unittest.TestCase):
    """deploy/docker/seccomp.json: Docker's default profile plus sandboxd's additions."""

    ADDED = {"clone", "unshare", "mount", "umount2", "pivot_root", "mount_setattr",
             "sethostname"}

    @classmethod
    def setUpClass(cls):
        with open(SECCOMP) as f:
            cls.profile = json.load(f)
        cls.rules = cls.profile["syscalls"]

    def test_refuses_by_default_like_dockers_profile(self):
        self.assertEqual(self.profile["defaultAction"], "SCMP_ACT_ERRNO")
        self.assertEqual(self.profile["defaultErrnoRet"], 1)  # EPERM
        arches = {a["architecture"] for a in self.profile["archMap"]}
        self.assertLessEqual({"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}, arches)

    def test_additions_are_exactly_the_documented_ones(self):
        added = [r for r in self.rules if r["comment"].startswith("sandboxd:")]
        names = {n for r in added for n in r["names"]}
        self.assertEqual(names, self.ADDED)
        for r in added:  # unconditional allows: the kernel's own checks still apply
            self.assertEqual(r["action"], "SCMP_ACT_ALLOW")
            self.assertNotIn("args", r)
            self.assertNotIn("includes", r)
        with open(SECCOMP_DOC) as f:
            doc = f.read()
        for n in sorted(names):
            self.assertRegex(doc, r"`%s`" % n, f"deploy/docker/README.md does not explain {n}")

    def test_everything_else_keeps_dockers_rules(self):
        docker = [r for r in self.rules if r["comment"].startswith("docker:")]
        self.assertEqual(len(docker) + 6, len(self.rules))
        plain = next(r for r in docker if "includes" not in r and "args" not in r
                     and r["action"] == "SCMP_ACT_ALLOW")
        # What Docker allows every container, and what the sandbox itself relies on.
        for n in ("read", "execve", "seccomp", "landlock_create_ruleset", "pidfd_open",
                  "close_range", "prctl", "ioctl"):
            self.assertIn(n, plain["names"])
        # Still refused (or capability-gated) as in Docker's default.
        for n in ("setns", "bpf", "keyctl", "kexec_load", "open_by_handle_at", "reboot",
                  "init_module", "fsopen", "open_tree", "move_mount"):
            for r in self.rules:
                if n in r["names"] and r["action"] == "SCMP_ACT_ALLOW":
                    self.assertIn("caps", r.get("includes", {}), f"{n} allowed without a cap")
        clone3 = [r for r in self.rules if r["names"] == ["clone3"]]
        self.assertEqual(clone3[0]["errnoRet"], 38)  # ENOSYS: glibc falls back to clone
        for r in self.rules:
            self.assertIn(r["action"], ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"))


class InstallTest(unittest.TestCase):
    """`cmake --install` into a temporary prefix: the installed binary finds its profile
    template under <prefix>/share/sandboxd and a browser session starts from that copy."""

    def test_installed_binary_uses_the_installed_profile(self):
        build_dir = os.path.dirname(os.path.abspath(BIN))
        if not os.path.exists(os.path.join(build_dir, "cmake_install.cmake")):
            self.skipTest(f"{BIN} is not in a CMake build tree")
        if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
            self.skipTest("no Chromium installed")
        tmp = tempfile.mkdtemp(prefix="sandboxd-install-")
        try:
            prefix = os.path.join(tmp, "prefix")
            r = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            binary = os.path.join(prefix, "bin", "sandboxd")
            template = os.path.join(prefix, "share", "sandboxd", "chromium-profile")
            self.assertTrue(os.access(binary, os.X_OK), r.stdout)
            self.assertTrue(os.path.isfile(os.path.join(template, "Default", "Preferences")))
            # A mark only the installed copy has: the session's profile must carry it.
            with open(os.path.join(template, "installed-copy"), "w") as f:
                f.write("yes\n")
            src = os.path.realpath(os.path.join(SOURCE_DIR, "chromium-profile"))
            with Server(binary=binary, env={"BROWSER_POOL_SIZE": "0"}) as srv:
                log = srv.read_log().decode(errors="replace")
                self.assertIn(f"chromium profile template: {os.path.realpath(template)}\n", log)
                self.assertNotIn(src, log)
                res = srv.post("/browser/sessions", {"device": "desktop"})
                self.assertEqual(res.status, 201, res.body)
                sid = res.json()["sessionId"]
                profile = os.path.join(srv.data_dir, "browser", sid, "profile")
                self.assertTrue(os.path.isfile(os.path.join(profile, "installed-copy")))
                self.assertFalse(os.path.islink(profile))
                nav = srv.post(f"/browser/sessions/{sid}/navigate", {"url": "about:blank"})
                self.assertEqual(nav.status, 200, nav.body)
                # The rest of the installed tree works too (the zygote's shared object).
                run = srv.post("/execute", {"code": "print(6 * 7)"})
                self.assertEqual(run.status, 200, run.body)
                self.assertEqual(run.json()["stdout"], "42\n")
                self.assertEqual(srv.delete(f"/browser/sessions/{sid}").status, 204)
                self.assertTrue(wait_until(lambda: not os.path.exists(profile), 10))
            self.assertFalse(os.path.exists(os.path.join(src, "installed-copy")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_a_binary_without_its_zygote_object_runs_cold_and_says_why_once(self):
        # a package that forgot sandboxd-zygote.so: one clear line, every run cold, no retries
        tmp = tempfile.mkdtemp(prefix="sandboxd-noso-")
        try:
            binary = os.path.join(tmp, "sandboxd")
            shutil.copy2(BIN, binary)
            with Server(binary=binary, env={"BROWSER_POOL_SIZE": "0"}) as srv:
                run = srv.post("/execute", {"code": "print(6 * 7)"})
                self.assertEqual(run.status, 200, run.body)
                self.assertEqual(run.json()["stdout"], "42\n")
                time.sleep(1.5)  # a retry loop would have logged again by now
                health = srv.get("/health").json()["exec"]
                log = srv.read_log().decode(errors="replace")
                zdir = os.path.join(srv.data_dir, "zygote")
                left = os.listdir(zdir) if os.path.isdir(zdir) else []
            self.assertEqual((health["mode"], health["zygote"], health["startedCold"]),
                             ("zygote", None, 1), health)
            self.assertEqual(log.count("sandboxd-zygote.so not found next to"), 1, log)
            self.assertIn("zygote not started (sandboxd-zygote.so not found", log)
            self.assertNotIn("restarting", log)
            self.assertEqual(left, [])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_build_tree_binary_uses_the_source_template(self):
        # The build tree links chromium-profile beside the binary; the link is resolved, so a
        # session gets a copy and never writes into the source tree.
        srv = Server(env={"BROWSER_POOL_SIZE": "0"})
        with srv:
            log = srv.read_log().decode(errors="replace")
        src = os.path.realpath(os.path.join(SOURCE_DIR, "chromium-profile"))
        self.assertIn(f"chromium profile template: {src}\n", log)

    def test_an_explicit_setting_wins(self):
        tmp = tempfile.mkdtemp(prefix="sandboxd-profile-")
        try:
            with Server(env={"CHROMIUM_PROFILE_DIR": tmp, "BROWSER_POOL_SIZE": "0"}) as srv:
                log = srv.read_log().decode(errors="replace")
            self.assertIn(f"chromium profile template: {tmp}\n", log)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class SourceShapeTest(unittest.TestCase):
    """The module graph a newcomer can draw: http -> {browser, exec} -> common, no include
    cycle between files, no source file over ~900 lines, the settings table read by main.c
    alone (modules get their options at init)."""

    LAYERS = {"common": set(), "browser": {"common"}, "exec": {"common"},
              "http": {"browser", "exec", "common"}}
    MAX_LINES = 900

    def sources(self):
        src = os.path.join(SOURCE_DIR, "src")
        for d, _, files in os.walk(src):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), SOURCE_DIR)

    def includes(self, rel):
        with open(os.path.join(SOURCE_DIR, rel), errors="replace") as f:
            text = f.read()
        for m in re.finditer(r'^#include "([^"]+)"', text, re.M):
            yield os.path.normpath(os.path.join(os.path.dirname(rel), m.group(1)))

    @staticmethod
    def unit(path):  # x.c, x.h and x_int.h are one unit
        return re.sub(r"(_int)?\.[ch]$", "", path)

    def test_folders_depend_one_way(self):
        for rel in self.sources():
            parts = rel.split(os.sep)
            if len(parts) < 3:  # src/main.c sits above every module
                continue
            self.assertIn(parts[1], self.LAYERS, f"{rel}: a new module folder belongs in LAYERS")
            for inc in self.includes(rel):
                to = inc.split(os.sep)[1]
                if to != parts[1]:
                    self.assertIn(to, self.LAYERS[parts[1]], f"{rel} includes {inc}")

    def test_no_include_cycle(self):
        edges = {}
        for rel in self.sources():
            for inc in self.includes(rel):
                a, b = self.unit(rel), self.unit(inc)
                if a != b:
                    edges.setdefault(a, set()).add(b)
        state, cycles = {}, []

        def visit(u, path):
            state[u] = 1
            for v in sorted(edges.get(u, ())):
                if state.get(v) == 1:
                    cycles.append(path[path.index(v):] + [v])
                elif not state.get(v):
                    visit(v, path + [v])
            state[u] = 2

        for u in sorted(edges):
            if not state.get(u):
                visit(u, [u])
        self.assertEqual(cycles, [])

    def test_no_source_file_is_too_long(self):
        for rel in self.sources():
            with open(os.path.join(SOURCE_DIR, rel), errors="replace") as f:
                n = sum(1 for _ in f)
            self.assertLessEqual(n, self.MAX_LINES, f"{rel} has {n} lines: split it")

    def test_only_main_reads_the_settings_table(self):
        for rel in self.sources():
            if rel in ("src/main.c", "src/common/config.c"):
                continue
            for inc in self.includes(rel):
                self.assertNotEqual(inc, "src/common/config.h", f"{rel} includes config.h")


class ScriptsTest(unittest.TestCase):
    def test_scripts_parse(self):
        scripts = [os.path.join(SOURCE_DIR, ".ci", "run")]
        sdir = os.path.join(SOURCE_DIR, "scripts")
        scripts += [os.path.join(sdir, n) for n in sorted(os.listdir(sdir)) if n.endswith(".sh")]
        scripts.append(os.path.join(SOURCE_DIR, "bench", "run.sh"))
        self.assertGreaterEqual(len(scripts), 5)
        for path in scripts:
            r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{path}: {r.stderr}")
            self.assertTrue(os.access(path, os.X_OK), f"{path} is not executable")

    def test_benchmark_parses_and_pins_its_npm_packages(self):
        # Not run here (it is not a test); but it must not rot unnoticed.
        bench = os.path.join(SOURCE_DIR, "bench")
        if subprocess.run(["which", "node"], capture_output=True).returncode == 0:
            r = subprocess.run(["node", "--check", os.path.join(bench, "bench.mjs")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(bench, "package.json")) as f:
            deps = json.load(f)["dependencies"]
        with open(os.path.join(bench, "package-lock.json")) as f:
            locked = json.load(f)["packages"]
        for name, version in deps.items():
            self.assertRegex(version, r"^\d+\.\d+\.\d+$", f"{name} must be pinned exactly")
            self.assertEqual(locked[f"node_modules/{name}"]["version"], version, name)
        self.assertNotIn("puppeteer", deps, "the full puppeteer package downloads a browser")

    def test_install_deps_refuses_an_unknown_group(self):
        r = subprocess.run(["bash", INSTALL, "no-such-group"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no-such-group", r.stderr)

    def test_readme_opens_with_the_two_commands(self):
        with open(README) as f:
            head = f.read(3000)
        first = re.findall(r"^\s*(?:sudo )?(\./scripts/\S+)", head, re.M)
        self.assertEqual(first[:2], ["./scripts/run.sh", "./scripts/test.sh"])

    def test_readme_settings_table_matches_the_binary(self):
        # The table between the markers is `sandboxd --help-markdown`, with this checkout's
        # path shown as <repo>. Regenerate it with scripts/update-readme.sh.
        out = subprocess.run([BIN, "--help-markdown"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        want = out.stdout
        for src in {os.path.realpath(SOURCE_DIR), os.path.abspath(SOURCE_DIR)}:
            want = want.replace(src + "/", "<repo>/")
        want = want.strip()
        with open(README) as f:
            m = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", f.read(), re.S)
        self.assertIsNotNone(m, "README.md has no settings markers")
        self.assertEqual(m.group(1).strip(), want,
                         "README.md's settings table is stale: run scripts/update-readme.sh")


if __name__ == "__main__":
    unittest.main()
