"""Host side of smart cards: a transport port, the OpenPGP card session, one pyscard adapter.

- transport.Transport          the port: transmit(apdu) -> (data, sw)
- openpgp.OpenPgpSession       OpenPGP card v3.4 over any Transport (Pin, KeySlot, CardStatus)
- provision.provision          write the card profile and generate keys (smartcard/README.md)
- errors                       WrongPin, PinBlocked, CardRemoved, WrongCard, NoReader,
                               NotSupported, CardError (all appliance.errors.CardsError)
- pcsc                         the only pyscard user: list_readers, slot_states, wait_slot,
                               connect -> PcscTransport, find_card(serial), ReaderMonitor
In tests, vcard.DirectTransport(vcard.VirtualCard(...)) is a Transport with a real card
state machine behind it.
"""
