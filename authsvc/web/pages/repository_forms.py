"""The forms of a repository's grants and deletes (Flask-WTF: each carries its CSRF token)."""

# Flask-WTF ships no type information (nor WTForms without types-WTForms): its classes are Any.
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import InputRequired, Length


class GrantForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    username = StringField("User name", validators=[
        InputRequired("Enter the user name to grant."),
        Length(max=255, message="User name is too long.")])
    pull = BooleanField("pull")
    push = BooleanField("push")
    delete = BooleanField("delete")
    submit = SubmitField("Grant")

    def actions(self) -> list[str]:
        return [a for a in ("pull", "push", "delete") if getattr(self, a).data]


class RevokeForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    username = HiddenField("User name", validators=[InputRequired("No user name given.")])
    submit = SubmitField("Remove")


class DeleteForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    tag = HiddenField("Tag", validators=[Length(max=128, message="Tag is too long.")])
    confirm = StringField("Type the name to confirm", validators=[
        InputRequired("Type the name to confirm."),
        Length(max=512, message="Too long.")])
    submit = SubmitField("Delete")
