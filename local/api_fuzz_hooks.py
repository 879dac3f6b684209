"""schemathesis hooks for `local/api-fuzz.sh`.

One kind of failure is dropped, and each drop is said on stderr: the local emulator's own 500
(`https://httpstatuses.com/500`). It is never a function's answer: every error of ours is
`urn:naksha:problem:*`, and a function that panicked fails `make e2e` from the functions' log.
`cargo lambda watch` answers it when it cannot hand a body that is not UTF-8 to a function under
a text content type (API Gateway base64-encodes such a body and the functions answer 400, which
the bad-input e2e tests check), and now and then when it loses an answer a function gave.
"""

import sys

import schemathesis

EMULATOR_500 = b"https://httpstatuses.com/500"


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if response is None or response.status_code != 500 or EMULATOR_500 not in (response.content or b""):
        return True
    print(f"[api-fuzz] the emulator's own 500 dropped: {case.method} {case.path}", file=sys.stderr)
    return False
