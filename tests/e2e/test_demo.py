"""`make demo` run again beside a model that is served (``launcher.demo``)."""

from launcher.demo import choose_the_demo_run
from tests.e2e.conftest import TOKEN


def test_a_refused_choice_is_said_and_the_demo_serves_on(pipeline):
    """As when the alias names a model of other classes chosen by hand since the last demo:
    dashboard.choose refuses in one line (here: a run it does not know), and the demo says so
    and serves on instead of failing."""
    stack, _ = pipeline
    said: list[str] = []
    choose_the_demo_run(stack, lambda name, message: said.append(f"{name}: {message}"),
                        "0" * 32, TOKEN)  # fmt: skip
    assert said[0].startswith(f"choose: run {'0' * 32} not chosen: error: ")
    assert said[1].startswith("choose: the predictor serves version ")
    assert f"dashboard.choose {'0' * 32} --reason TEXT" in said[1]
