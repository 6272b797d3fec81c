"""Built-in serializers (``pickle``, ``json``) and the signing/encryption layer around them."""
