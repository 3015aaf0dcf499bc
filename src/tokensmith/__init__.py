"""tokensmith: JWT issuing and verification for your own services.

Public names live in the subpackages (``tokensmith.jose`` for the JOSE core).
"""

__version__ = "0.1.0"
