"""The registry itself: its HTTP API as authsvc's client (``client``), and the nginx front that
sends Docker's ``/v1/search`` to authsvc (``proxy_config``). No Flask, no database."""
