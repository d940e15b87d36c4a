"""The fleet DAO from a member's seat: proposals, votes, status and revenue claims (`depai dao`)."""
