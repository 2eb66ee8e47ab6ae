#!/usr/bin/env python3
"""A real SMTP server for the email tests: aiosmtpd (installed from PyPI by
scripts/email-e2e.sh) on 127.0.0.1, on a free port it prints on its first
line of stdout. Every message it accepts is written whole, as received, to
DIR/NNNNNN.eml (through a temporary name and a rename, so a reader never
sees half a file), after an `X-Envelope-To:` line naming its recipients.

Usage: email-sink.py DIR
"""

import asyncio
import itertools
import os
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.numbers = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        n = next(self.numbers)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        head = ("X-Envelope-To: " + ",".join(envelope.rcpt_tos) + "\r\n").encode()
        temporary = os.path.join(self.directory, f".{n:06}.tmp")
        with open(temporary, "wb") as f:
            f.write(head + content)
        os.rename(temporary, os.path.join(self.directory, f"{n:06}.eml"))
        return "250 OK"


async def main(directory):
    loop = asyncio.get_running_loop()
    sink = Sink(directory)
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", decode_data=False),
        "127.0.0.1",
        0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    # Stops when the test closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
