"""The forms of the access tokens and account pages (Flask-WTF: each carries its CSRF token).
Field names are the element ids the tests and assistive technology find them by."""

# Flask-WTF ships no type information (nor WTForms without types-WTForms): its classes are Any.
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, StringField, SubmitField
from wtforms.validators import AnyOf, EqualTo, InputRequired, Length, NumberRange, Optional

from authsvc.db.access_tokens import MAX_DAYS, MAX_NAME, PERMISSIONS

#: The permissions an access token may carry, as the form offers them (radio buttons: WTForms'
#: choice fields take their choices in a form that changes between WTForms versions).
PERMISSION_CHOICES = (("read", "Read: pull"), ("write", "Write: pull and push"),
                      ("delete", "Delete: pull, push and delete"))


class AccessTokenForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    name = StringField("Name", validators=[
        InputRequired("Enter a name for the token."),
        Length(max=MAX_NAME, message=f"Name must be at most {MAX_NAME} characters.")])
    permission = StringField("Permission", validators=[
        InputRequired("Choose read, write or delete."),
        AnyOf(sorted(PERMISSIONS), message="Choose read, write or delete.")])
    expires_in_days = IntegerField("Expires in days (optional)", validators=[
        Optional(), NumberRange(min=1, max=MAX_DAYS,
                                message=f"Enter a number of days from 1 to {MAX_DAYS}.")])
    repositories = StringField("Repositories (optional, separated by commas or spaces)",
                               validators=[Length(max=5000, message="Too many repositories.")])
    submit = SubmitField("Create token")


class PasswordChangeForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    current_password = PasswordField("Current password", validators=[
        InputRequired("Enter your current password."),
        Length(max=1024, message="Password is too long.")])
    new_password = PasswordField("New password", validators=[
        InputRequired("Enter a new password."),
        Length(max=1024, message="Password is too long.")])
    new_password_again = PasswordField("New password again", validators=[
        InputRequired("Enter the new password again."),
        EqualTo("new_password", message="The two new passwords differ.")])
    submit = SubmitField("Change password")
