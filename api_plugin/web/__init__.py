"""The HTTP layer: the URL map, the views, JSON rendering and request checks.

Nothing here touches the database; views call the services and the app renders what
they return, or the error they raise.
"""
