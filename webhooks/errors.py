from core.errors import Unprocessable


class EndpointLimitReached(Unprocessable):
    code = "endpoint_limit_reached"
    default_message = (
        "The app has as many enabled webhook endpoints as it may; delete or disable one first."
    )
