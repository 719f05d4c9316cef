from cashback.services.earn import cashback_earn
from cashback.services.expire import Expired, cashback_expire_due
from cashback.services.ledger import Posted
from cashback.services.redeem import cashback_redeem
from cashback.services.refund import cashback_refund
from cashback.services.release import Released, cashback_release_due
from cashback.services.reverse import cashback_reverse

__all__ = [
    "Expired",
    "Posted",
    "Released",
    "cashback_earn",
    "cashback_expire_due",
    "cashback_redeem",
    "cashback_refund",
    "cashback_release_due",
    "cashback_reverse",
]
