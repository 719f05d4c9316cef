from cashback.services.earn import cashback_earn
from cashback.services.ledger import Posted
from cashback.services.redeem import cashback_redeem
from cashback.services.refund import cashback_refund

__all__ = ["Posted", "cashback_earn", "cashback_redeem", "cashback_refund"]
