"""The pages' forms (Flask-WTF: each carries its CSRF token). Field names are the element ids
the browser tests and assistive technology find them by."""

# Flask-WTF ships no type information (nor WTForms without types-WTForms): its classes are Any.
from flask_wtf import FlaskForm
from wtforms import (
    PasswordField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import AnyOf, InputRequired, Length

from authsvc.db.repositories import MAX_DESCRIPTION, VISIBILITIES

#: The visibility choices as the repository page offers them.
CHOICES = (("private", "Private: you, admins and the users you grant pull"),
           ("public", "Public: anyone, without signing in"))


class SignInForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    username = StringField("User name", validators=[
        InputRequired("Enter your user name."), Length(max=255, message="User name is too long.")])
    password = PasswordField("Password", validators=[
        InputRequired("Enter your password."), Length(max=1024, message="Password is too long.")])
    submit = SubmitField("Sign in")


class VisibilityForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    #: Rendered as radio buttons by the template (``CHOICES``); WTForms' RadioField takes its
    #: choices in a form that changes between WTForms versions.
    visibility = StringField("Who may pull", validators=[
        InputRequired("Choose public or private."),
        AnyOf(VISIBILITIES, message="Choose public or private.")])
    submit = SubmitField("Save visibility")


class DescriptionForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    description = TextAreaField("Description", validators=[Length(
        max=MAX_DESCRIPTION, message=f"Description must be at most {MAX_DESCRIPTION} characters.")])
    submit = SubmitField("Save description")
