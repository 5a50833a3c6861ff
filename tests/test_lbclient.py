"""The load client the LB tests rely on: what it promises about requests after a hook."""
import time

from lbclient import hammer
from realservices import stub_upstream


def test_after_hooks_requests_follow_the_end_of_a_slow_hook() -> None:
    with stub_upstream("only") as stub:
        seen_when_hook_returned: list[int] = []

        def slow_hook() -> None:
            time.sleep(1.5)  # like a reload under CPU load: the other workers keep sending meanwhile
            seen_when_hook_returned.append(stub.requests_seen())

        answered, failures = hammer(stub.port, "chat.test", 60, 30, at={10: slow_hook}, after_hooks=50)
        seen_at_end = stub.requests_seen()
    assert failures == []
    assert sum(answered.values()) >= 60
    assert seen_at_end - seen_when_hook_returned[0] >= 50
