"""Card errors with data and operator text.

Messages say what is wrong, hints what to do next. None of them ever carries a PIN.
"""

from __future__ import annotations

from appliance.errors import CardsError

PIN_NAMES = {0x81: "user PIN", 0x82: "user PIN", 0x83: "admin PIN", 0x00: "reset code"}


def pin_name(ref: int) -> str:
    return PIN_NAMES.get(ref, f"PIN {ref:#04x}")


class WrongPin(CardsError):
    """The card refused a PIN; `tries_left` more attempts before it locks."""

    title = "Wrong PIN"

    def __init__(self, tries_left: int, *, pin: str = "PIN") -> None:
        plural = "try" if tries_left == 1 else "tries"
        super().__init__(
            f"{pin[0].upper()}{pin[1:]} wrong: {tries_left} {plural} left before the card locks",
            hint="Type the PIN again slowly; stop and ask the Ceremony Administrator "
            "if you are not sure of it.",
            tries_left=tries_left,
            pin=pin,
        )
        self.tries_left = tries_left
        self.pin = pin


class PinBlocked(CardsError):
    """The PIN's retry counter is at zero."""

    title = "PIN blocked"

    def __init__(self, *, pin: str = "PIN") -> None:
        hint = (
            "The card must be reset to factory state; its keys are lost."
            if pin == "admin PIN"
            else "Unblock it with the reset code or the admin PIN (the card's owner and "
            "the Ceremony Administrator together)."
        )
        super().__init__(f"The card's {pin} is blocked", hint=hint, pin=pin)
        self.pin = pin


class CardRemoved(CardsError):
    """The card left the reader (before or during a command)."""

    title = "Card removed"

    def __init__(self, reader: str = "") -> None:
        where = f" from {reader}" if reader else ""
        super().__init__(
            f"The card was removed{where}",
            hint="Insert the card again and repeat the step; nothing was changed on the "
            "card by the interrupted command unless the card says so.",
            reader=reader,
        )
        self.reader = reader


class WrongCard(CardsError):
    """A card is present but it is not the one the step expects."""

    title = "Wrong card"

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(
            f"Wrong card: expected serial {expected}, found {found}",
            hint=f"Remove this card and insert the card with serial {expected}.",
            expected=expected,
            found=found,
        )
        self.expected = expected
        self.found = found


class NoReader(CardsError):
    """No card reader (or no reader with a card) is available."""

    title = "No reader"

    def __init__(self, detail: str = "no card reader found") -> None:
        super().__init__(
            f"No card reader: {detail}",
            hint="Plug in the card reader and check that pcscd runs (`appliance doctor`).",
            detail=detail,
        )


class NotSupported(CardsError):
    """The card lacks a feature the appliance needs."""

    title = "Card not supported"

    def __init__(self, feature: str, version: str = "") -> None:
        on = f" (OpenPGP card version {version})" if version else ""
        super().__init__(
            f"This card does not support {feature}{on}",
            hint="Use an OpenPGP card v3.4 with NIST P-256 (YubiKey 5, Nitrokey 3, SmartPGP).",
            feature=feature,
            version=version,
        )
        self.feature = feature
        self.version = version


_SW_TEXT = {
    0x6285: "the card's OpenPGP application is terminated (factory reset pending)",
    0x6581: "the card reports a memory failure",
    0x6700: "the card rejected the command length",
    0x6882: "the card does not support secure messaging",
    0x6883: "the card expected the last command of a chain",
    0x6982: "the card requires a PIN first (security status not satisfied)",
    0x6983: "the PIN is blocked",
    0x6985: "the card refused: conditions of use not satisfied",
    0x6A80: "the card rejected the data (incorrect parameters in the command data)",
    0x6A82: "the card has no OpenPGP application",
    0x6A86: "the card rejected P1/P2",
    0x6A88: "the data object is not on the card",
    0x6B00: "the card rejected the parameters",
    0x6D00: "the card does not know this command",
    0x6E00: "the card does not know this class",
    0x6F00: "the card reported an internal error",
}


#: What to do about a status word, where it is not "check the card and repeat".
_SW_HINT = {
    0x6285: "The card was pulled during a factory reset and holds nothing usable. Set it "
    "aside for now; enrolling it again (an enrolment or share re-issue ceremony) finishes "
    "the reset. Its holder's credential must be re-issued.",
}
_DEFAULT_HINT = (
    "Check that this is the right card and repeat the step; note the status word in the "
    "journal if it happens again."
)


class CardError(CardsError):
    """The card answered with an error status word."""

    def __init__(self, sw: int, what: str = "") -> None:
        text = _SW_TEXT.get(sw, "the card returned an error")
        prefix = f"{what}: " if what else ""
        super().__init__(
            f"{prefix}{text} (SW {sw:04X})", hint=_SW_HINT.get(sw, _DEFAULT_HINT), sw=sw
        )
        self.sw = sw
