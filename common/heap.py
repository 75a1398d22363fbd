"""Keep the garbage collector's full passes off a service's request path, and end the threads
that only a collection ends."""

import gc


def freeze_startup_heap() -> int:
    """Move every object alive now into the garbage collector's permanent generation.

    Call it when a service has imported and warmed up everything, before it serves. A service
    that imports torch and MLflow holds ~700,000 objects that live as long as it does; CPython
    walks all of them in each full (generation 2) collection, which allocation under load starts
    every few seconds. Measured in the evaluator with 50 concurrent clients: those passes took
    0.44-0.53 s, holding the GIL, and every request in flight waited for them (the 0.4-0.8 s
    p99 stalls of ``benchmarks/bench_evaluator.py``). Frozen objects are never scanned again,
    so the later passes see only what was made after start-up. (Frozen objects that are or
    become garbage in a cycle are not freed; start-up objects are modules, classes and
    functions that stay. No collection runs first: it would be one more such pass, ~0.5 s, and
    in a test process that starts many services each start would pay it.)

    Returns:
        How many objects were frozen.
    """
    gc.freeze()
    return gc.get_freeze_count()


def end_download_threads() -> None:
    """End the idle download threads of the MLflow artifact repositories made since the last
    call: call it after each artifact download.

    Each repository starts a pool of up to 8 threads and holds itself in a reference cycle, so
    only the cyclic collector ends them: a predictor gained 5 idle threads per alias move, and a
    dashboard one or more per artifact it reads. The young generations hold repositories made
    just now (2 ms; a full collection takes 0.3 s in a process with torch loaded)."""
    gc.collect(1)
