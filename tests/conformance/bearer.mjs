// bearer.mjs -- preloaded into the conformance runner (node --import ./bearer.mjs ...) to add
// "Authorization: Bearer $SANDBOXD_CONFORMANCE_TOKEN" to every request it sends to
// $SANDBOXD_CONFORMANCE_ORIGIN, sandboxd's address.
//
// @modelcontextprotocol/conformance 0.1.16 takes its server only as --url and has no way to
// add a request header (an open request upstream: modelcontextprotocol/conformance#453),
// while every sandboxd route needs a bearer token and has no mode without one. Its HTTP goes
// through the SDK's StreamableHTTPClientTransport (fetch), bare fetch and undici's request;
// all three dispatch through undici's process-wide global dispatcher, so one interceptor there
// covers every request without touching the suite. The token comes from the environment, never
// the command line, and a request that already carries an Authorization header keeps it.
import { Agent, setGlobalDispatcher } from 'undici';

const token = process.env.SANDBOXD_CONFORMANCE_TOKEN;
const origin = process.env.SANDBOXD_CONFORMANCE_ORIGIN;
if (!token || !origin) {
    throw new Error('bearer.mjs: set SANDBOXD_CONFORMANCE_TOKEN and SANDBOXD_CONFORMANCE_ORIGIN');
}
const want = new URL(origin).origin;

// headers as undici passes them: null, a flat [name, value, ...] array, or an object
function withBearer(headers) {
    const auth = `Bearer ${token}`;
    if (headers == null) return { authorization: auth };
    if (Array.isArray(headers)) {
        for (let i = 0; i < headers.length; i += 2) {
            if (String(headers[i]).toLowerCase() === 'authorization') return headers;
        }
        return [...headers, 'authorization', auth];
    }
    const obj = typeof headers[Symbol.iterator] === 'function' ? Object.fromEntries(headers)
                                                               : { ...headers };
    if (Object.keys(obj).some((k) => k.toLowerCase() === 'authorization')) return obj;
    obj.authorization = auth;
    return obj;
}

const bearer = (dispatch) => (opts, handler) => {
    const to = new URL(String(opts.origin)).origin;
    if (to !== want) return dispatch(opts, handler);
    return dispatch({ ...opts, headers: withBearer(opts.headers) }, handler);
};

setGlobalDispatcher(new Agent().compose(bearer));
