# Assertion helpers that portable tests share; MicroPython has no pytest.


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception it raised; fail if it raised no exc_type."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type.__name__))
