from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from appliance.ceremony.actions.common import require_script_quorum
from appliance.ceremony.errors import ActionFailed


def test_the_script_quorum_must_be_the_sets_threshold() -> None:
    cset = cast(Any, SimpleNamespace(set_id="S1", threshold=4))
    require_script_quorum({"quorum": 4}, cset)
    with pytest.raises(ActionFailed, match="asks for 3 shareholders but set S1 needs 4") as info:
        require_script_quorum({"quorum": 3}, cset)
    assert info.value.hint == "Correct the script's quorum to the roster's threshold."
