"""DNSSEC errors: input format errors naming the place, one policy error per requirement id."""

from __future__ import annotations

from typing import Any, ClassVar

from appliance.errors import DnssecError


class DnssecInputError(DnssecError):
    """A KSR or SKR file is not well formed; `where` names the file and line or element."""

    title = "KSR/SKR format"

    def __init__(self, source: str, where: str, problem: str, *, hint: str = "") -> None:
        place = f"{source}, {where}" if where else source
        super().__init__(
            f"{place}: {problem}",
            hint=hint or "Ask the zone operator for a complete, unmodified file.",
            source=source,
            where=where,
        )
        self.source = source
        self.where = where
        self.problem = problem


class InputLimitError(DnssecInputError):
    """The file exceeds a configured size, depth or count limit."""


class PolicyViolation(DnssecError):
    """A KSR breaks one requirement of the zone's policy (one subclass per requirement id)."""

    title = "KSR policy"
    requirement: ClassVar[str] = "KSR-POLICY"
    summary: ClassVar[str] = "policy requirement"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(
            f"{self.requirement}: {message}",
            hint="Ask the zone operator for a corrected KSR, or record a witnessed override "
            f"for {self.requirement}.",
            requirement=self.requirement,
            **fields,
        )
        self.detail = message


def _violation(requirement: str, summary: str) -> type[PolicyViolation]:
    name = requirement.replace("-", "_") + "_Violation"
    cls = type(name, (PolicyViolation,), {"requirement": requirement, "summary": summary})
    cls.__doc__ = f"{requirement}: {summary}."
    return cls


# kskm's requirement ids (IANA dnssec-keytools) where they exist, ours (KSR-*) for the rest.
KSR_DOMAIN = _violation("KSR-DOMAIN", "the request is for the zone the policy names")
KSR_BUNDLE_UNIQUE = _violation("KSR-BUNDLE-UNIQUE", "bundle ids are unique")
KSR_BUNDLE_KEYS = _violation("KSR-BUNDLE-KEYS", "a key tag or id names one key in all bundles")
KSR_BUNDLE_POP = _violation("KSR-BUNDLE-POP", "each ZSK signed its bundle (proof of possession)")
KSR_BUNDLE_COUNT = _violation("KSR-BUNDLE-COUNT", "number of bundles within policy")
KSR_BUNDLE_CYCLE_DURATION = _violation(
    "KSR-BUNDLE-CYCLE-DURATION", "first to last bundle within the policy's cycle duration"
)
KSR_POLICY_KEYS = _violation("KSR-POLICY-KEYS", "number of keys per bundle within policy")
KSR_POLICY_ALG = _violation("KSR-POLICY-ALG", "algorithms allowed by policy")
KSR_POLICY_SIG_OVERLAP = _violation(
    "KSR-POLICY-SIG-OVERLAP", "consecutive bundles overlap within policy, no gaps"
)
KSR_POLICY_SIG_VALIDITY = _violation(
    "KSR-POLICY-SIG-VALIDITY", "signature validity within the policy's min and max"
)
KSR_POLICY_SIG_HORIZON = _violation(
    "KSR-POLICY-SIG-HORIZON", "nothing already expired, nothing expiring too far ahead"
)
KSR_POLICY_BUNDLE_INTERVALS = _violation(
    "KSR-POLICY-BUNDLE-INTERVALS", "interval between bundle inceptions within policy"
)
KSR_POLICY_SAFETY = _violation(
    "KSR-POLICY-SAFETY", "requested publish and retire safety margins within policy"
)
KSR_CHAIN_KEYS = _violation(
    "KSR-CHAIN-KEYS", "first key set equals the previous SKR's last key set"
)
KSR_CHAIN_OVERLAP = _violation(
    "KSR-CHAIN-OVERLAP", "first bundle overlaps the previous SKR's last bundle"
)
KSR_CHAIN_ID = _violation("KSR-CHAIN-ID", "KSR id and bundle ids not reused from the previous SKR")
KSR_OWNER = _violation("KSR-OWNER", "every record's owner name is the zone")
KSR_RECORD_TYPE = _violation("KSR-RECORD-TYPE", "a request holds DNSKEY records only")
KSR_FLAGS = _violation("KSR-FLAGS", "requested keys are zone keys (flags 256), protocol 3")
KSR_KEY_TAG = _violation("KSR-KEY-TAG", "stated key tags equal the recomputed ones")
KSR_ALG_DEPRECATED = _violation(
    "KSR-ALG-DEPRECATED", "algorithms 1, 3, 5, 6, 7, 10, 12 are always refused"
)
KSR_KEY_SIZE = _violation("KSR-KEY-SIZE", "key sizes and RSA exponents allowed by policy")
KSR_KSK_ACTIVE = _violation("KSR-KSK-ACTIVE", "a KSK exists and is active for every bundle")
KSR_KSK_ALG = _violation("KSR-KSK-ALG", "the KSK algorithm matches the bundles' algorithm")

#: Every requirement id, in report order.
REQUIREMENTS: dict[str, type[PolicyViolation]] = {
    c.requirement: c
    for c in (
        KSR_DOMAIN,
        KSR_OWNER,
        KSR_RECORD_TYPE,
        KSR_FLAGS,
        KSR_KEY_TAG,
        KSR_ALG_DEPRECATED,
        KSR_BUNDLE_UNIQUE,
        KSR_BUNDLE_KEYS,
        KSR_BUNDLE_POP,
        KSR_BUNDLE_COUNT,
        KSR_BUNDLE_CYCLE_DURATION,
        KSR_POLICY_KEYS,
        KSR_POLICY_ALG,
        KSR_KEY_SIZE,
        KSR_POLICY_SIG_OVERLAP,
        KSR_POLICY_SIG_VALIDITY,
        KSR_POLICY_SIG_HORIZON,
        KSR_POLICY_BUNDLE_INTERVALS,
        KSR_POLICY_SAFETY,
        KSR_CHAIN_KEYS,
        KSR_CHAIN_OVERLAP,
        KSR_CHAIN_ID,
        KSR_KSK_ACTIVE,
        KSR_KSK_ALG,
    )
}

#: Requirements no override can waive (a signature with a deprecated algorithm is worthless).
NOT_OVERRIDABLE = frozenset({"KSR-ALG-DEPRECATED"})


class PolicyViolations(DnssecError):
    """All the violations found in one KSR, reported at once."""

    title = "KSR policy"

    def __init__(self, source: str, violations: list[PolicyViolation]) -> None:
        ids = sorted({v.requirement for v in violations})
        lines = "\n".join(f"  - {v.message}" for v in violations)
        super().__init__(
            f"{source}: {len(violations)} policy violation(s) ({', '.join(ids)}):\n{lines}",
            hint="Nothing was signed. Ask the zone operator for a corrected KSR, or record a "
            "witnessed override per requirement id (--override ID=reason).",
            source=source,
            requirements=ids,
        )
        self.violations = list(violations)
        self.requirements = ids


class SigningError(DnssecError):
    """A signature could not be made, or did not verify after it was made."""

    title = "DNSSEC signing"
