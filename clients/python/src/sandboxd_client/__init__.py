"""sandboxd_client -- a standard-library-only client for sandboxd.

    from sandboxd_client import Client, SandboxdError
    c = Client("http://127.0.0.1:8080", token="...")
    print(c.execute("print(6 * 7)")["stdout"])
    with c.create_sandbox() as s:
        s.execute_code("x = 41")
        print(s.execute_code("x + 1")["result"])

Every failure raises SandboxdError(status, code, message).
"""

from .client import (BrowserSession, Client, Event, PythonSession, SandboxdError)

__all__ = ["BrowserSession", "Client", "Event", "PythonSession", "SandboxdError"]
__version__ = "0.1.0"
