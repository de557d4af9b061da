"""Ticket credentials other than the QR code: the traveller's face (1:1 at the gate).

`face` holds the encoder protocol, the dlib default, template sealing and
verification; `calibration` measures false-accept / false-reject rates of an
encoder over a labelled photo set. dlib is imported lazily, on first use.
"""
