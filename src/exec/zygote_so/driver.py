# driver.py -- the zygote's Python half, read from fd 6 by `python3 -c <boot> zygote <modules>`
# inside the sandbox's namespaces (embedded in the server; see serve.c for the C half).
#
# It imports the preload list, then hands control to sbx_zygote_serve() in the shared object
# the server passed as fd 5. That call only returns in a run's program process, already inside
# its own namespaces and every per-process layer (seccomp last); the program then runs here as
# `python3 -c` would run it: a fresh __main__, sys.argv == ['-c'], the same traceback shape
# and exit status, buffered files flushed by a normal interpreter exit.
import sys


def _sbx_warm_up():
    """Do once what the first use of numpy and pandas builds lazily (formatting, reductions,
    indexing and groupby machinery), so each run finds it in the pages it shares with the
    zygote instead of building it in its own copy: ~2 ms less a run, and fewer pages to copy
    and tear down. Nothing is printed; the random state is not touched (a run reseeds it).
    A failure only means less is warm."""
    import contextlib
    import io

    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            if np is not None:
                a = np.arange(12.0).reshape(4, 3)
                print(a, a.sum(), a.mean(axis=0), a.std(), a @ a.T, np.linspace(0, 1, 5),
                      int(a.sum()), a.astype(int).tolist())
            if np is not None and pd is not None:
                df = pd.DataFrame(np.arange(12).reshape(4, 3), columns=list("abc"))
                print(df, df.sum(), df.sum().sum(), df["b"].mean(), df.describe(), df.head(2),
                      df[df.a > 2], df.groupby("a").sum(), df.sort_values("b"), df.to_csv(),
                      df.to_dict(), pd.Series([1.5, None]).fillna(0))
    except Exception as e:  # noqa: BLE001
        print(f"zygote warm-up: {type(e).__name__}: {e}", file=sys.stderr)


def _sbx_zygote():
    import ctypes
    import gc
    import json
    import os

    def vm_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
        return 0

    before = vm_kib()
    loaded = []
    names = list(filter(None, (sys.argv[2] if len(sys.argv) > 2 else "").split(",")))
    if len(sys.argv) > 3 and sys.argv[3] == "light":  # only the standard library's part
        names = [n for n in names if n.split(".")[0] in sys.stdlib_module_names]
    for name in names:
        try:
            __import__(name)
            loaded.append(name)
        except BaseException as e:  # noqa: BLE001 -- a broken module must not stop the zygote
            print(f"cannot preload {name}: {type(e).__name__}: {e}", file=sys.stderr)
    _sbx_warm_up()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        os.environ.pop(var, None)  # only the import needed one thread; runs see the cold env
    ready = json.dumps({"modules": loaded, "preloadKiB": max(0, vm_kib() - before)})
    lib = ctypes.PyDLL("/proc/self/fd/5")
    os.close(5)
    serve = lib.sbx_zygote_serve
    serve.restype = ctypes.c_void_p
    serve.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
    n = ctypes.c_size_t(0)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    gc.freeze()  # keep the preloaded objects' pages shared with every run
    p = serve(4, ready.encode(), ctypes.byref(n))
    if not p:
        sys.exit(0)  # the server closed the control socket
    # From here on: a run's program process (pid 2 of its own namespaces).
    ctypes.pythonapi.PyOS_AfterFork_Child()  # what os.fork() does in a child: locks, at-fork hooks
    src = ctypes.string_at(p, n.value)
    lib.sbx_zygote_free(ctypes.c_void_p(p))
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()  # the global RandomState was seeded in the zygote
    # The finders cached for the zygote's own directories (its cwd was /work and its /tmp
    # another) would answer from their listings: drop them, and keep the other ~90 (the
    # standard library's and site-packages' directories do not differ, and a finder notices
    # a changed directory by its mtime). Clearing them all cost ~2.5 ms a run.
    cwd = os.getcwd()
    for key in list(sys.path_importer_cache):
        if (not os.path.isabs(key) or key in (cwd, "/tmp") or key.startswith(cwd + "/")
                or key.startswith("/tmp/")):
            del sys.path_importer_cache[key]
    # The run's own environment (a network run's proxy variables, say) replaces the zygote's:
    # os.environ as a cold `python3 -c` would have found it, and putenv for its children.
    env_fn = lib.sbx_zygote_env
    env_fn.restype = ctypes.c_void_p
    env_fn.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    env_len = ctypes.c_size_t(0)
    env_p = env_fn(ctypes.byref(env_len))
    want = {}
    for item in ctypes.string_at(env_p, env_len.value).split(b"\0"):
        name, eq, value = item.partition(b"=")
        if eq and name:
            want[os.fsdecode(name)] = os.fsdecode(value)
    if want:
        for name in [k for k in os.environ if k not in want]:
            del os.environ[name]
        for name, value in want.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
    done = lib.sbx_zygote_done
    done.restype = None
    done.argtypes = [ctypes.c_int]
    return os.fsdecode(src), done


def _sbx_exit_code(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=__import__("sys").stderr)
    except Exception:  # noqa: BLE001
        pass
    return 1


def _sbx_run(src, done):
    # Locals only: the globals are cleared below, before the program runs in them.
    import _io
    import gc
    import os
    import sys

    exit_code = _sbx_exit_code
    sys.argv[:] = ["-c"]
    if hasattr(sys, "orig_argv"):
        sys.orig_argv[:] = [sys.executable, "-c", src]
    g = sys.modules["__main__"].__dict__
    keep = ("__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__",
            "__builtins__")
    saved = {k: g[k] for k in keep if k in g}
    g.clear()
    g.update(saved)
    code = 0
    interrupted = False
    try:
        exec(compile(src, "<string>", "exec"), g)
    except SystemExit as e:
        code = exit_code(e)
    except BaseException as e:  # noqa: BLE001 -- print it as the interpreter would
        interrupted = isinstance(e, KeyboardInterrupt)
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        try:
            sys.excepthook(type(e), e.with_traceback(tb), tb)
        except Exception:  # noqa: BLE001
            pass
        code = 1
    # The end of an interpreter, minus the teardown of the preloaded modules (tens of ms of
    # page copying for nothing): wait for threads, run atexit, finalize what the program made
    # (its __main__ globals and garbage), flush every file still open, then leave.
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        import atexit
        atexit._run_exitfuncs()
        g.clear()
        gc.collect()
        # _io._IOBase, the C base of every file object, not the io.IOBase ABC: its isinstance
        # walks the ABC's registry for each new type (~1.2 ms a run with pandas loaded)
        for o in gc.get_objects():
            if isinstance(o, _io._IOBase):
                try:
                    if not o.closed:
                        o.flush()
                except Exception:  # noqa: BLE001
                    pass
    except SystemExit as e:
        code = exit_code(e)
    except BaseException:  # noqa: BLE001
        code = code or 120
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:  # noqa: BLE001
            code = code or 120
    if interrupted:  # as the interpreter does: end by the signal itself
        import signal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    done(code)  # the server may answer now, while the kernel tears this process down
    os._exit(code)


_sbx_run(*_sbx_zygote())
