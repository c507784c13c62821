"""The forms of the organisation pages (Flask-WTF: each carries its CSRF token). Field names
are the element ids the tests and assistive technology find them by."""

# Flask-WTF ships no type information (nor WTForms without types-WTForms): its classes are Any.
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length

from authsvc.core.policy import TEAM_PERMISSIONS
from authsvc.db.organizations import MAX_DESCRIPTION

#: A team's permissions as the page offers them (radio buttons).
PERMISSION_CHOICES = (("read", "Read: pull"), ("write", "Write: pull and push"),
                      ("admin", "Admin: pull, push, delete, and manage the repositories"))


class CreateOrgForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    name = StringField("Organisation name", validators=[
        InputRequired("Enter a name for the organisation."),
        Length(max=255, message="Name is too long.")])
    owners = StringField("Owners (user names, separated by spaces; you are one unless you are "
                         "an admin)", validators=[Length(max=5000, message="Too many owners.")])
    submit = SubmitField("Create organisation")

    def owner_names(self) -> list[str]:
        return (self.owners.data or "").replace(",", " ").split()


class UserNameForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    """Add an owner or a team member."""

    username = StringField("User name", validators=[
        InputRequired("Enter a user name."), Length(max=255, message="User name is too long.")])
    submit = SubmitField("Add")


class RemoveUserForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    username = HiddenField("User name", validators=[InputRequired("No user name given.")])
    submit = SubmitField("Remove")


class TeamForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    name = StringField("Team name", validators=[
        InputRequired("Enter a name for the team."), Length(max=255, message="Name is too long.")])
    description = TextAreaField("Description (optional)", validators=[Length(
        max=MAX_DESCRIPTION, message=f"Description must be at most {MAX_DESCRIPTION} characters.")])
    submit = SubmitField("Create team")


class PermissionForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    target = StringField("On (ORG/* for every repository, or ORG/NAME)", validators=[
        InputRequired("Enter ORG/* or a repository ORG/NAME."),
        Length(max=257, message="Too long for a repository name.")])
    permission = StringField("Permission", validators=[
        InputRequired("Choose read, write or admin."),
        AnyOf(sorted(TEAM_PERMISSIONS), message="Choose read, write or admin.")])
    submit = SubmitField("Give permission")


class RemovePermissionForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    target = HiddenField("On", validators=[InputRequired("No target given.")])
    submit = SubmitField("Remove")


class ConfirmForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    """Delete a team or the organisation: the name typed again; ``force`` for an organisation
    that holds repositories."""

    confirm = StringField("Type the name to confirm", validators=[
        InputRequired("Type the name to confirm."), Length(max=512, message="Too long.")])
    force = BooleanField("Also forget its repositories' records and grants (the images stay "
                         "in the registry)")
    submit = SubmitField("Delete")
