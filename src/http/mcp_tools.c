/* mcp_tools.c -- the tools POST /mcp offers: one REST route each, with an input schema and a
 * description written for a model (what it does, when to use it, what comes back).
 *
 * Schemas are JSON with ' in place of " (mcp.c swaps them once), so they read as JSON here;
 * the texts therefore never use an apostrophe. Browser state travels as an explicit
 * sessionId argument: there is no MCP session, and any call can be served on its own.
 */
#include "mcp.h"

#include <stddef.h>

#define SID                                                                                        \
    "'sessionId':{'type':'string','description':'The id returned by browser_session_create.'}"
#define PSID                                                                                       \
    "'sessionId':{'type':'string','description':'The id of a Python session (from "                \
    "python_session_create).'}"
#define TAB                                                                                        \
    "'tabId':{'type':'string','description':'A tab of the session (from browser_tabs_list or "     \
    "browser_tab_new); default: the current tab.'}"
#define TIMEOUT                                                                                    \
    "'timeoutMs':{'type':'integer','minimum':1,'maximum':600000,'description':'How long to wait, " \
    "in ms (default: the server setting, 30 s).'}"
#define SEL(what)                                                                                  \
    "'selector':{'type':'string','description':'CSS selector of the element " what                 \
    "; it is waited for until timeoutMs.'}"
#define OBJ(props, req)                                                                            \
    "{'type':'object','properties':{" props "},'required':[" req "],'additionalProperties':false}"

#define ACTION_TAIL                                                                                \
    " Returns {ok: true, ...}. Fails with element_not_found when the selector matches nothing in " \
    "time, and with a message naming the covering element when another element is on top."

const mcp_tool mcp_tools[] = {
    {"python_run", "Run Python", "exec", "POST", "/execute", MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON,
     NULL, false, false,
     "Run a Python 3 program in a fresh, isolated sandbox and wait for it to end. Use it to "
     "compute, parse or transform data, or to test code. Each call starts from nothing: no state, "
     "variables or files survive between calls, there is no network, and only the work directory "
     "(the current directory) and /tmp are writable. numpy, pandas and matplotlib can be "
     "imported. Print what you want to see. Returns {exitCode, stdout, stderr, durationMs, "
     "timedOut, signal, violations, truncated}: a failing program is a normal result (read "
     "stderr), and lines starting with sandbox: explain what the sandbox refused.",
     OBJ("'code':{'type':'string','description':'The Python source to run.'},"
         "'timeoutMs':{'type':'integer','minimum':1,'maximum':120000,'description':'Wall-clock "
         "limit in ms (default 30000); the program is killed after it.'}",
         "'code'")},

    {"python_session_create", "Start a Python session", "exec", "POST", "/python/sessions",
     MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false, false,
     "Start a stateful Python session: one interpreter that keeps its variables, imports and "
     "files between calls (like a notebook kernel), in the same sandbox as python_run (no "
     "network, only its work directory and /tmp writable). numpy, pandas and matplotlib are "
     "already imported, so it starts in milliseconds. Pass the returned sessionId to "
     "python_session_execute and python_session_command; close it with python_session_close "
     "when done (it also ends after an hour without a call). Returns {sessionId, createdAt, "
     "expiresAt}.",
     OBJ("'env':{'type':'object','additionalProperties':{'type':'string'},'description':'"
         "Environment variables for the session (NAME: value).'}",
         "")},

    {"python_session_execute", "Run code in a Python session", "exec", "POST",
     "/python/sessions/{sessionId}/execute", MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false,
     false,
     "Run Python code in a session: variables, functions and imports of earlier calls are "
     "there. Returns {stdout, stderr, result, error, images, display, executionCount, "
     "durationMs, timedOut}: result is the repr of the last expression, error is null or {name, "
     "value, traceback}, images are base64 PNGs of matplotlib figures, display holds text/html "
     "of values such as a pandas DataFrame. Past timeoutMs the code is interrupted and the "
     "session keeps its state. An error kernel_restarted means the interpreter had to be "
     "killed and restarted: its variables were lost, define them again.",
     OBJ("'sessionId':{'type':'string','description':'The id from python_session_create.'},"
         "'code':{'type':'string','description':'The Python code to run.'},"
         "'timeoutMs':{'type':'integer','minimum':1,'maximum':120000,'description':'Wall-clock "
         "limit in ms (default 30000).'}",
         "'sessionId','code'")},

    {"python_session_command", "Run a shell command in a Python session", "exec", "POST",
     "/python/sessions/{sessionId}/commands", MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false,
     false,
     "Run a shell command (/bin/sh -c) in the session, in its work directory and sandbox: it "
     "sees the files the Python code wrote, and the code sees the files it writes. Returns "
     "{exitCode, stdout, stderr, durationMs, timedOut}; past timeoutMs every process of the "
     "command is killed.",
     OBJ("'sessionId':{'type':'string','description':'The id from python_session_create.'},"
         "'command':{'type':'string','description':'The shell command line.'},"
         "'cwd':{'type':'string','description':'A directory relative to the work directory.'},"
         "'timeoutMs':{'type':'integer','minimum':1,'maximum':120000,'description':'Wall-clock "
         "limit in ms (default 30000).'}",
         "'sessionId','command'")},

    {"python_session_files_list", "List session files", "exec", "GET",
     "/python/sessions/{sessionId}/files", MCP_IN_QUERY, NULL, NULL, MCP_OUT_JSON, NULL, true,
     false,
     "List the files of a Python session (its work directory, the current directory of its "
     "code and commands). Returns {files: [{path, size, type: file or dir, mtime}]}, paths "
     "relative to the work directory; symbolic links are not listed.",
     OBJ(PSID ",'path':{'type':'string','description':'A directory relative to the work "
              "directory (default: its root).'},"
              "'depth':{'type':'integer','minimum':1,'maximum':32,'description':'Levels to "
              "descend (default 1: the entries of path only).'}",
         "'sessionId'")},

    {"python_session_file_read", "Read a session file", "exec", "GET",
     "/python/sessions/{sessionId}/files/{path+}", MCP_IN_QUERY, NULL, "maxChars|offset",
     MCP_OUT_HTML, NULL, true, false,
     "Read a file of a Python session as text (bytes that are not UTF-8 show as U+FFFD). Large "
     "files are cut: at most maxChars characters (default 20000) from offset. Use "
     "python_session_files_list to find paths.",
     OBJ(PSID ",'path':{'type':'string','description':'The file, relative to the work "
              "directory, e.g. out/result.csv.'},"
              "'maxChars':{'type':'integer','minimum':1,'maximum':1000000,'description':'Most "
              "characters to return (default 20000).'},"
              "'offset':{'type':'integer','minimum':0,'maximum':1000000000,'description':'"
              "Character offset to start from (default 0).'}",
         "'sessionId','path'")},

    {"python_session_file_write", "Write a session file", "exec", "POST",
     "/python/sessions/{sessionId}/files", MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false,
     false,
     "Write a file into a Python session (missing directories are made, an existing file is "
     "replaced), so its code and commands can read it. Give content for text or contentBase64 "
     "for bytes. Returns {files: [{path, size}]}.",
     OBJ(PSID ",'path':{'type':'string','description':'The file, relative to the work "
              "directory.'},"
              "'content':{'type':'string','description':'The text to write (UTF-8).'},"
              "'contentBase64':{'type':'string','description':'Or the bytes, base64.'}",
         "'sessionId','path'")},

    {"python_session_close", "Close a Python session", "exec", "DELETE",
     "/python/sessions/{sessionId}", MCP_IN_QUERY, NULL, NULL, MCP_OUT_EMPTY,
     "The session is closed: its interpreter, processes and files are gone.", false, true,
     "Close a Python session: its interpreter, its processes and its work directory are gone, "
     "and its sessionId is invalid afterwards.",
     OBJ("'sessionId':{'type':'string','description':'The id from python_session_create.'}",
         "'sessionId'")},

    {"browser_session_create", "Open a browser", "browser", "POST", "/browser/sessions",
     MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false, false,
     "Start a new headless Chromium browser session with one blank tab. Call it once before "
     "the other browser_ tools and pass the returned sessionId to each of them. The session "
     "keeps cookies and tabs between calls; it closes after 5 minutes without a call (a server "
     "setting) or when you call browser_session_close, which you should do when done. Returns "
     "{sessionId, tabId}.",
     OBJ("'device':{'type':'string','enum':['desktop','mobile'],'description':'desktop "
         "(default) or mobile (a 390x844 phone with touch and a mobile user agent).'}",
         "")},

    {"browser_session_list", "List browser sessions", "browser", "GET", "/browser/sessions",
     MCP_IN_QUERY, NULL, NULL, MCP_OUT_JSON, NULL, true, false,
     "List the browser sessions this token opened and that are still alive, with their tabs. "
     "Use it to find a sessionId again. Returns {sessions: [{sessionId, device, createdAt, "
     "tabs}]}.",
     OBJ("", "")},

    {"browser_session_close", "Close a browser", "browser", "DELETE",
     "/browser/sessions/{sessionId}", MCP_IN_QUERY, NULL, NULL, MCP_OUT_EMPTY,
     "The session is closed: its browser, tabs and cookies are gone.", false, true,
     "Close a browser session and free its resources. Its sessionId is invalid afterwards.",
     OBJ(SID, "'sessionId'")},

    {"browser_navigate", "Go to a URL", "browser", "POST", "/browser/sessions/{sessionId}/navigate",
     MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false, false,
     "Load a URL in a tab of the session and wait until it has loaded. Only http, https and "
     "about:blank URLs are allowed. Returns {url, status, title}: the final URL after redirects "
     "and the HTTP status of the page. A DNS or connection failure is an error with "
     "the reason Chromium gives (such as net::ERR_CONNECTION_REFUSED).",
     OBJ(SID ",'url':{'type':'string','description':'The absolute http(s) URL to open.'},"
             "'waitUntil':{'type':'string','enum':['load','domcontentloaded','networkidle0',"
             "'networkidle2'],'description':'When the page counts as loaded (default load).'}," TAB
             "," TIMEOUT,
         "'sessionId','url'")},

    {"browser_content", "Read the page HTML", "browser", "GET",
     "/browser/sessions/{sessionId}/content", MCP_IN_QUERY, NULL, "maxChars|offset", MCP_OUT_HTML,
     NULL, true, false,
     "Read the HTML of the page in a tab as it is now (after scripts ran). Large pages are cut "
     "so they do not flood your context: at most maxChars characters (default 20000) are "
     "returned, starting at offset, and a last line says how many characters the page has and "
     "which offset to ask for next. Use a narrower tool (browser_evaluate with a "
     "document.querySelector expression) when you need one value.",
     OBJ(SID "," TAB ",'maxChars':{'type':'integer','minimum':1,'maximum':1000000,'description':'"
             "Most characters to return (default 20000).'},"
             "'offset':{'type':'integer','minimum':0,'maximum':1000000000,'description':'Character "
             "offset to "
             "start from (default 0), to read a long page in parts.'}",
         "'sessionId'")},

    {"browser_click", "Click an element", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "click", NULL, MCP_OUT_JSON, NULL, false, false,
     "Click an element with real mouse events at its centre, after scrolling it into "
     "view." ACTION_TAIL,
     OBJ(SID "," SEL("to click") ",'button':{'type':'string','enum':['left','right','middle']},"
                                 "'clickCount':{'type':'integer','minimum':1,'maximum':3}," TAB
                                 "," TIMEOUT,
         "'sessionId','selector'")},

    {"browser_type", "Type text", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "type", NULL, MCP_OUT_JSON, NULL, false, false,
     "Type text into an element with key events, appended to what it holds (use browser_fill to "
     "replace the value)." ACTION_TAIL,
     OBJ(SID
         "," SEL("to type into") ",'text':{'type':'string','description':'The text to type.'}," TAB
                                 "," TIMEOUT,
         "'sessionId','selector','text'")},

    {"browser_fill", "Fill a field", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "fill", NULL, MCP_OUT_JSON, NULL, false, false,
     "Set the value of an input, textarea or editable element, replacing what it held, and fire "
     "input and change events. The quickest way to fill a form field." ACTION_TAIL,
     OBJ(SID "," SEL("to fill") ",'value':{'type':'string','description':'The new value.'}," TAB
                                "," TIMEOUT,
         "'sessionId','selector','value'")},

    {"browser_press", "Press a key", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "press", NULL, MCP_OUT_JSON, NULL, false, false,
     "Press one key: Enter, Tab, Escape, Backspace, Delete, ArrowUp/Down/Left/Right, Home, End, "
     "PageUp, PageDown, Space, or one character. With a selector the element is focused first; "
     "without one the key goes to the focused element (Enter submits a form)." ACTION_TAIL,
     OBJ(SID ",'key':{'type':'string','description':'The key name, such as Enter.'}," SEL(
             "to focus first (optional)") "," TAB "," TIMEOUT,
         "'sessionId','key'")},

    {"browser_select", "Choose options", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "select", NULL, MCP_OUT_JSON, NULL, false, false,
     "Choose options of a select element by value or by visible label. Returns {ok, selected}: "
     "the values now selected.",
     OBJ(SID "," SEL("of the select element") ",'values':{'type':'array','items':{'type':'string'},"
                                              "'description':'Values or labels to select.'}," TAB
                                              "," TIMEOUT,
         "'sessionId','selector','values'")},

    {"browser_hover", "Hover an element", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "hover", NULL, MCP_OUT_JSON, NULL, false, false,
     "Move the mouse over an element (to open a menu or show a tooltip)." ACTION_TAIL,
     OBJ(SID "," SEL("to hover") "," TAB "," TIMEOUT, "'sessionId','selector'")},

    {"browser_scroll", "Scroll", "browser", "POST", "/browser/sessions/{sessionId}/action",
     MCP_IN_BODY, "scroll", NULL, MCP_OUT_JSON, NULL, false, false,
     "Scroll the page to the pixel position x, y, or scroll an element into view with a "
     "selector. Returns {ok, scrollX, scrollY}.",
     OBJ(SID ",'x':{'type':'number'},'y':{'type':'number'}," SEL("to scroll into view") "," TAB
                                                                                        "," TIMEOUT,
         "'sessionId'")},

    {"browser_wait_for", "Wait for an element", "browser", "POST",
     "/browser/sessions/{sessionId}/action", MCP_IN_BODY, "waitForSelector", NULL, MCP_OUT_JSON,
     NULL, true, false,
     "Wait until an element matching the selector is visible (default), attached or hidden, for "
     "content that appears after a click or a script. Fails with a timeout when it never does.",
     OBJ(SID "," SEL("to wait for") ",'state':{'type':'string','enum':['visible','attached',"
                                    "'hidden']}," TAB "," TIMEOUT,
         "'sessionId','selector'")},

    {"browser_evaluate", "Run JavaScript", "browser", "POST",
     "/browser/sessions/{sessionId}/action", MCP_IN_BODY, "evaluate", NULL, MCP_OUT_JSON, NULL,
     false, false,
     "Evaluate a JavaScript expression in the page and return its value as JSON (promises are "
     "awaited). Use it to read exactly what you need, such as "
     "document.querySelector(\"#total\").textContent. Returns {ok, result}; an exception is an "
     "error with its message.",
     OBJ(SID ",'expression':{'type':'string','description':'A JavaScript expression.'}," TAB
             "," TIMEOUT,
         "'sessionId','expression'")},

    {"browser_screenshot", "Take a screenshot", "browser", "GET",
     "/browser/sessions/{sessionId}/screenshot", MCP_IN_QUERY, NULL, NULL, MCP_OUT_IMAGE, NULL,
     true, false,
     "Take a screenshot of the visible part of a tab (or the full page, or one element) and "
     "return it as an image. Use it to see the layout or to check what happened.",
     OBJ(SID "," TAB ",'fullPage':{'type':'boolean','description':'The whole page, not only the "
             "viewport.'},"
             "'selector':{'type':'string','description':'CSS selector: only this "
             "element.'},"
             "'format':{'type':'string','enum':['png','jpeg']},"
             "'quality':{'type':'integer','minimum':0,'maximum':100,'description':'jpeg "
             "quality.'}",
         "'sessionId'")},

    {"browser_tabs_list", "List tabs", "browser", "GET", "/browser/sessions/{sessionId}/tabs",
     MCP_IN_QUERY, NULL, NULL, MCP_OUT_JSON, NULL, true, false,
     "List the tabs of a session (popups included). Returns {tabs: [{tabId, url, title, "
     "active}]}; the active tab is the one the other tools use without a tabId.",
     OBJ(SID, "'sessionId'")},

    {"browser_tab_new", "Open a tab", "browser", "POST", "/browser/sessions/{sessionId}/tabs",
     MCP_IN_BODY, NULL, NULL, MCP_OUT_JSON, NULL, false, false,
     "Open a new tab, optionally loading a URL; it becomes the current tab. Returns {tabId}.",
     OBJ(SID ",'url':{'type':'string','description':'An http(s) URL to load (optional).'}," TIMEOUT,
         "'sessionId'")},

    {"browser_tab_close", "Close a tab", "browser", "DELETE",
     "/browser/sessions/{sessionId}/tabs/{tabId}", MCP_IN_QUERY, NULL, NULL, MCP_OUT_EMPTY,
     "The tab is closed.", false, true,
     "Close one tab of a session (its tabId from browser_tabs_list or browser_tab_new); "
     "the session and its other tabs stay open.",
     OBJ(SID ",'tabId':{'type':'string','description':'The tab to close.'}",
         "'sessionId','tabId'")},

    {"browser_cookies_get", "Read cookies", "browser", "GET",
     "/browser/sessions/{sessionId}/cookies", MCP_IN_QUERY, NULL, NULL, MCP_OUT_JSON, NULL, true,
     false,
     "Read the cookies of a session: all of them, or with url only those a request to that URL "
     "would send. Returns {cookies: [{name, value, domain, path, expires, httpOnly, secure, "
     "session, sameSite}]}.",
     OBJ(SID ",'url':{'type':'string','description':'Only the cookies sent to this URL.'}," TAB,
         "'sessionId'")},

    {0},
};
