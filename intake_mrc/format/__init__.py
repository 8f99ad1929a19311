"""Pure parsing of MRC bytes: headers, extended headers and pixel decoding. No I/O here."""
