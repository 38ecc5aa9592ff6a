"""Generated CSV files for the table reader's tests: edge cases of read.csv and random decimals.

Each case is (name, bytes). ``tests/test_tables.py`` checks that ``RBridge.read_table`` gives a data
frame ``identical()`` to ``utils::read.csv``'s (in R) for every one of them, and records which of them
the fast path reads (the others are left to read.csv).
"""

from __future__ import annotations

import numpy as np

HEADER = b'"id","x","s"\n'


def _rows(*rows: str) -> bytes:
    return "".join(row + "\n" for row in rows).encode("utf-8")


def edge_cases() -> list[tuple[str, bytes]]:
    cases = [
        ("plain", b"a,b\n1,2.5\n3,4\n"),
        ("quoted header and strings", HEADER + _rows('1,0.1,"a"', '2,0.2,"b c"', '3,NA,""')),
        ("quoted numbers", HEADER + _rows('"1","0.5","x"', '2,"1.25",y')),
        ("quoted NA", HEADER + _rows('1,"NA","NA"', '2,3.5,"z"')),
        ("NA strings", b"a,b,c\nNA,NA,NA\n1,2.5,x\nNA,NA,y\n"),
        ("all NA column", b"a,b\n1,NA\n2,NA\n3,\n"),
        ("empty fields", b"a,b,c\n1,,x\n,2.5,\n3,4,z\n"),
        ("blank lines", b"a,b\n1,2\n\n3,4\n\n"),
        ("blank lines CRLF", b"a,b\r\n1,2\r\n\r\n3,4.5\r\n"),
        ("no final newline", b"a,b\n1,2\n3,4.25"),
        ("white space numbers", b"a,b\n 1,2.5 \n3 , 4\n"),
        ("white space strings", b'a,b\n1, x\n2,y \n3,  \n'),
        ("white space line", b"a,b\n1,2\n   \n3,4\n"),
        ("leading space before quote", b'a,b\n1, "x"\n2,"y"\n'),
        ("doubled quotes", b'a,b\n1,"say ""hi"""\n2,"x"\n'),
        ("quoted comma", b'a,b\n1,"x,y"\n2,"z"\n'),
        ("quoted newline", b'a,b\n1,"x\ny"\n2,"z"\n'),
        ("integer vs double", b"a,b,c,d\n1,1,1,2147483647\n2,2.0,-0,-2147483647\n3,3,0,5\n"),
        ("int32 overflow", b"a,b\n1,2147483648\n2,-2147483648\n3,0\n"),
        ("int64 overflow", b"a,b\n1,99999999999999999999\n2,1\n"),
        ("negative zero", b"a,b,c\n-0,-0.0,-0\n0,0.0,1.5\n"),
        ("negative zero in promoted", b"a,b\n-0,1\n0,2\n1.5,3\n"),
        ("leading zeros", b"a,b\n007,00.50\n010,-0003.25\n"),
        ("dot forms", b"a,b,c\n.5,5.,-.25\n1,2,3\n"),
        ("lone dot", b"a,b\n.,1\n2,3\n"),
        ("exponents", b"a,b\n1e5,1E-3\n2.5e+10,3\n"),
        ("inf nan", b"a,b,c\nInf,NaN,-Inf\n1,2,3\n"),
        ("hex", b"a,b\n0x10,0x1p3\n1,2\n"),
        ("plus sign", b"a,b\n+1,+2.5\n2,3\n"),
        ("logical words", b"a,b,c\nT,TRUE,true\nF,FALSE,false\nNA,True,False\n"),
        ("logical and numbers", b"a,b\nT,1\n1,0\n"),
        ("UTF-8 strings", "a,b\n1,café\n2,日本語\n3,\"naïve\"\n".encode()),
        ("UTF-8 header", "été,b\n1,2\n".encode()),
        ("latin1 bytes", b"a,b\n1,caf\xe9\n2,x\n"),
        ("BOM", b"\xef\xbb\xbfa,b\n1,2\n"),
        ("NUL byte", b"a,b\n1,x\x00y\n2,z\n"),
        ("lone CR", b"a,b\r1,2\r3,4\r"),
        ("blank first line", b"\na,b\n1,2\n"),
        ("header only", b"a,b\n"),
        ("row names column", b"a,b\n1,2,3\n4,5,6\n"),
        ("short row", b"a,b,c\n1,2,3\n4,5\n"),
        ("long row", b"a,b\n1,2\n3,4,5\n"),
        ("trailing comma", b"a,b,\n1,2,\n3,4,\n"),
        ("duplicate and bad names", b"a,a,1x,my var,\n1,2,3,4,5\n"),
        ("header spaces", b" a , b \n1,2\n"),
        ("single column", b"a\n1\n2\n\n3\n"),
        ("hash and quote chars", b"a,b\n1,#x\n2,it's\n"),
        ("backslash", b'a,b\n1,x\\ny\n2,"q\\"\n'),
        ("slash", b"a,b\n1/2,3\n4,5\n"),
        ("many digits", b"a,b\n0.12345678901234567,1\n1234567890123456789.5,2\n1234567890123456789,3\n"),
        ("too many digits", b"a,b\n12345678901234567890.5,1\n2,2\n"),
        ("long fraction", b"a,b\n0.000000000000000000000000000001234,1\n1.5,2\n"),
        ("tiny and huge", b"a,b\n0." + b"0" * 320 + b"1,1\n1" + b"0" * 320 + b".5,2\n"),
        ("near 300 digits", b"a,b\n0." + b"0" * 290 + b"123,1\n1.5,2\n"),
    ]
    return cases


def random_decimals(rows: int = 20000, seed: int = 20) -> bytes:
    """Random decimals of 1-19 significant digits, 0-25 of them after the point, signs, zeros and
    leading zeros: the cells where read.csv's double rounding (one ulp from correct) shows."""
    rng = np.random.default_rng(seed)
    out = ["a,b,c"]
    for _ in range(rows):
        cells = []
        for _ in range(3):
            ndig = int(rng.integers(1, 20))
            digits = "".join(str(d) for d in rng.integers(0, 10, ndig))
            k = int(rng.integers(0, min(ndig, 25) + 1)) if rng.random() < 0.9 else int(rng.integers(0, 26))
            if k > ndig:
                digits = "0" * (k - ndig) + digits
            text = digits if k == 0 else digits[:len(digits) - k] + "." + digits[len(digits) - k:]
            if rng.random() < 0.3:
                text = "-" + text
            if rng.random() < 0.02:
                text = "NA"
            cells.append(text)
        out.append(",".join(cells))
    return ("\n".join(out) + "\n").encode()
