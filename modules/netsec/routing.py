"""Which handler answers a request: routes ('/a/<name>/<path:rest>'), static directories and
protected prefixes. netsec.server.Server is a Router that also runs the connections."""
from netsec.http import HTTPError
from netsec.static import Static


class Route:
    def __init__(self, methods, pattern, handler, auth, max_body):
        if not pattern.startswith("/"):
            raise ValueError("route %r must start with '/'" % pattern)
        self.methods = (methods,) if isinstance(methods, str) else tuple(methods)
        self.parts = pattern[1:].split("/")
        for i, part in enumerate(self.parts):
            if part.startswith("<path:") and i != len(self.parts) - 1:
                raise ValueError("<path:...> must be the last part of route %r" % pattern)
        self.handler = handler
        self.auth = auth
        self.max_body = max_body

    def match(self, got):
        """params dict if the path's segments (path[1:].split("/")) fit the pattern, else None."""
        params = {}
        for i, part in enumerate(self.parts):
            if part.startswith("<path:"):
                params[part[6:-1]] = "/".join(got[i:])
                return params
            if i >= len(got):
                return None
            if part.startswith("<") and part.endswith(">"):
                if not got[i]:
                    return None
                params[part[1:-1]] = got[i]
            elif part != got[i]:
                return None
        return params if len(got) == len(self.parts) else None

    def allows(self, method):
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)


class Router:
    """Routes, static directories and protected prefixes; dispatch() picks for a request."""

    def __init__(self, max_body):
        self.max_body = max_body
        self._routes = []
        self._statics = []
        self._protected = []  # (lowercase path prefix, BasicAuth)

    def add_route(self, methods, pattern, handler, auth=None, max_body=None):
        """Serve pattern ('/a/<name>/<path:rest>') for methods with handler(request)."""
        self._routes.append(Route(methods, pattern, handler, auth,
                                  self.max_body if max_body is None else max_body))

    def route(self, pattern, methods=("GET",), auth=None, max_body=None):
        """Decorator form of add_route: @app.route("/x", methods=("POST",))."""
        def register(handler):
            self.add_route(methods, pattern, handler, auth, max_body)
            return handler
        return register

    def static(self, prefix, directory, cache_control="max-age=300"):
        """Serve the files under directory at prefix (GET and HEAD). Routes are tried first,
        so static("/", ...) can serve a whole site around an API. netsec-credentials/ is never
        served."""
        self._statics.append(Route("GET", prefix.rstrip("/") + "/<path:path>",
                                   Static(directory, cache_control), None, 0))

    def protect(self, prefix, auth):
        """Require auth (a BasicAuth) for every path at or under prefix, in any letter case:
        on FAT, /ADMIN/x is the file /admin/x."""
        self._protected.append((prefix.rstrip("/").lower(), auth))

    def _protection(self, path):
        path = path.lower()
        for prefix, auth in self._protected:
            if path == prefix or path.startswith(prefix + "/") or not prefix:
                return auth
        return None

    def dispatch(self, head, session):
        """(route, params, user) for a request head; HTTPError 401, 404 or 405."""
        # A protected prefix asks for credentials before saying what exists under it.
        protection = self._protection(head.path)
        user = protection.check(head.headers, session) if protection else None
        route, params = self._find(head)
        if route.auth:
            user = route.auth.check(head.headers, session)
        return route, params, user

    def _find(self, head):
        if head.path == "*":
            raise HTTPError(404, "no resource is named *")
        allowed = []
        got = head.path[1:].split("/")  # once per request, not once per route
        for routes in (self._routes, self._statics):
            for route in routes:
                params = route.match(got)
                if params is None:
                    continue
                if route.allows(head.method):
                    return route, params
                allowed.extend(route.methods)
        if allowed:
            raise HTTPError(405, head.method + " is not allowed here", False,
                            [("Allow", ", ".join(allowed))])
        raise HTTPError(404, "nothing at " + head.path)
