"""Host side of smart cards: a transport port, the OpenPGP card session, one pyscard adapter."""
